"""ASE calculators for the Au20 models (SchNetAu20, KRRAu20), their ASE plugin and db helpers."""
