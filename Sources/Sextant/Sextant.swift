// The engine façade. Today it carries the embedder and the input formats the CLI and the
// server share; the index, store and search come with later issues.
@_exported import Embedding
@_exported import Inference
@_exported import Tokenizers
