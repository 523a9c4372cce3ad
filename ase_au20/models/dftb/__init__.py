"""DFTB1 with the auorg-1-1 Au–Au tables: the level of theory of the Au20 labels.

Small modules, one step each: ``skf`` reads the table, ``rotations`` applies the
Slater–Koster rules, ``assembly`` builds H and S, ``solve`` diagonalises and fills,
``forces`` differentiates, ``calculation`` runs one single point, ``model`` is the model
protocol and ``build`` writes the shipped directory.
"""
