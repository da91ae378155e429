// HNSW over compressed vectors (issue 4). See README and the design sketch.
