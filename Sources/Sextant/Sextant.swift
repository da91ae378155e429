// The engine façade: `Collection` (index a folder, search, tasks), the embedder, and the input
// formats the CLI and the server share. Re-exports the lower modules for library users.
@_exported import Embedding
@_exported import Inference
@_exported import Tokenizers
import Store
@_exported import VectorIndex

/// Any JSON value, integers kept exact (document metadata, filters).
public typealias JSONValue = Store.JSONValue
/// A condition on document metadata (`--where`, the server's `where`).
public typealias MetadataFilter = Store.MetadataFilter
/// A document with its fields, as `Collection.document(path:)` and `documents(...)` return it.
public typealias DocumentInfo = Store.DocumentInfo
