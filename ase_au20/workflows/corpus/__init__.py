"""The labelled corpus: families of structures drawn and labelled with the reference
(``settings``: what is drawn; ``plan``: the tasks; ``families``: how each is drawn;
``sample``: the run on the Dask engine)."""
