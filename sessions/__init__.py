"""Query and prompt logs -> canonical events -> sessions -> missions -> pairs.

The room: where files live (`storage`: local paths and URIs of any filesystem; `io`:
outputs published atomically, with manifests), log formats and their readers (`formats/`, `records`, `ingest`), the
canonical schema, text features (`text`, `lexicon`), segmentation (`segment`),
mission linking (`missions`), pair mining (`pairs`), metrics against ground truth
(`metrics`), reformulation types (`reformulation`) and the local, one-process job
(`pipeline`). Functions work on polars DataFrames or LazyFrames; none knows how it
is distributed.

May import: polars, pyarrow, fsspec, numpy, numba, zlib-ng, zstandard, lz4, scikit-learn (and boto3, where
an S3 output is locked). Not ray, torch, mlflow, nor any other package of ours (`hierarchies/`, `synth/`,
`models/`, `workflows/`).
"""
