"""Concept hierarchies as data: WordNet and HierarCaps -> nodes, edges, closures, depths.

The room: reading WordNet through nltk (`wordnet`), transitive closures and depths
(`closure`), index-array hierarchies and their train/test splits (`datasets`),
HierarCaps (`hierarcaps`), and ranking metrics of an embedding given as distances
(`metrics`: numpy only, so `models/` can use them).

May import: nltk, polars, numpy, scipy. Nothing of ours: not `sessions/`, `synth/`,
`models/` or `workflows/`, and never ray, torch or mlflow.
"""
