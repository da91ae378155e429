// The engine façade: `Collection` (index a folder, search, tasks), the embedder, and the input
// formats the CLI and the server share. Re-exports the lower modules for library users.
@_exported import Embedding
@_exported import Inference
@_exported import Tokenizers
import Store
@_exported import VectorIndex
