/// The OpenAPI 3.1 document of the server's routes, served at `/openapi.json`.
let openAPIDocument = #"""
{
  "openapi": "3.1.0",
  "info": {"title": "Sextant", "version": "1", "description": "Local semantic search: OpenAI-compatible embeddings, Cohere/Jina-compatible rerank, search over a collection and its documents. With --api-key every route but /health needs Authorization: Bearer KEY. Errors: {\"error\": {\"code\", \"message\"}} with a 4xx status (5xx only for faults of the server)."},
  "components": {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    "schemas": {
      "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
      "Usage": {"type": "object", "properties": {"prompt_tokens": {"type": "integer"}, "total_tokens": {"type": "integer"}}},
      "EmbeddingsRequest": {"type": "object", "required": ["input"], "properties": {
        "model": {"type": "string", "description": "ignored: the server's model answers (its name is returned)"},
        "input": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 256}]},
        "encoding_format": {"type": "string", "enum": ["float", "base64"], "description": "base64: little-endian f32"},
        "dimensions": {"type": "integer", "minimum": 1, "description": "fewer than the model's: truncated and renormalized; more: 400"},
        "input_type": {"type": "string", "enum": ["query", "passage", "document", "search_query", "search_document"]},
        "instruction": {"type": "string", "description": "a task instruction; implies the query side"}}},
      "EmbeddingsResponse": {"type": "object", "properties": {
        "object": {"const": "list"},
        "data": {"type": "array", "items": {"type": "object", "properties": {"object": {"const": "embedding"}, "index": {"type": "integer"}, "embedding": {"oneOf": [{"type": "array", "items": {"type": "number"}}, {"type": "string"}]}}}},
        "model": {"type": "string"}, "usage": {"$ref": "#/components/schemas/Usage"}}},
      "RerankRequest": {"type": "object", "required": ["query", "documents"], "properties": {
        "model": {"type": "string"}, "query": {"type": "string"},
        "documents": {"type": "array", "minItems": 1, "maxItems": 256, "items": {"oneOf": [{"type": "string"}, {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}]}},
        "top_n": {"type": "integer", "minimum": 1}, "return_documents": {"type": "boolean", "default": false}, "instruction": {"type": "string"}}},
      "RerankResponse": {"type": "object", "properties": {
        "results": {"type": "array", "items": {"type": "object", "properties": {"index": {"type": "integer"}, "relevance_score": {"type": "number", "description": "cosine of the query and document embeddings"}, "document": {"type": "object", "properties": {"text": {"type": "string"}}}}}},
        "model": {"type": "string"}, "usage": {"$ref": "#/components/schemas/Usage"}}},
      "SearchRequest": {"type": "object", "required": ["query"], "properties": {
        "query": {"type": "string"}, "instruction": {"type": "string"},
        "examples": {"type": "array", "items": {"type": "object", "required": ["query", "response"], "properties": {"query": {"type": "string"}, "response": {"type": "string"}}}},
        "task": {"type": "string"}, "k": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10},
        "mode": {"type": "string", "enum": ["dense", "lexical", "hybrid"], "default": "hybrid"},
        "filter": {"type": "string", "description": "a GLOB over document paths"},
        "where": {"type": "object", "description": "a metadata filter, e.g. {\"year\": {\"$gte\": 2020}} (README: Metadata and filters)"},
        "metadata": {"type": "boolean", "default": true, "description": "whether hits carry their document's fields"},
        "exact": {"type": "boolean", "default": false, "description": "brute force over every matching chunk instead of the HNSW walk (measures recall)"},
        "rerank": {"type": "boolean", "description": "rerank with the server's (or the task's) reranker; default true when there is one"},
        "rerank_depth": {"type": "integer", "minimum": 1, "default": 50, "description": "hits the reranker reads"},
        "text": {"type": "string", "enum": ["snippet", "full", "none"], "default": "snippet", "description": "what text each hit carries"}}},
      "SearchHit": {"type": "object", "properties": {
        "rank": {"type": "integer"}, "score": {"type": "number"}, "path": {"type": "string"}, "chunk_id": {"type": "integer"},
        "byte_start": {"type": "integer"}, "byte_end": {"type": "integer"}, "line_start": {"type": "integer"}, "line_end": {"type": "integer"},
        "heading_path": {"type": "string"}, "snippet": {"type": "string", "description": "with text 'snippet'"},
        "text": {"type": "string", "description": "the chunk text, with text 'full'"},
        "metadata": {"type": "object", "description": "the document's fields"}}},
      "Document": {"type": "object", "properties": {"id": {"type": ["string", "null"], "description": "the id of a doc:ID document"}, "path": {"type": "string"}, "title": {"type": "string"}, "chunks": {"type": "integer"}, "metadata": {"type": "object"}}},
      "DocumentPage": {"type": "object", "properties": {"documents": {"type": "array", "items": {"$ref": "#/components/schemas/Document"}}, "next_after": {"type": ["integer", "null"], "description": "pass as after for the next page; null on the last"}}},
      "FieldsPatch": {"type": "object", "required": ["metadata"], "properties": {"metadata": {"type": "object", "description": "fields to set; null removes one"}}},
      "SearchResponse": {"type": "object", "properties": {"query": {"type": "string"}, "mode": {"type": "string"}, "k": {"type": "integer"}, "hits": {"type": "array", "items": {"$ref": "#/components/schemas/SearchHit"}}}},
      "DocumentsRequest": {"type": "object", "required": ["documents"], "properties": {"documents": {"type": "array", "minItems": 1, "maxItems": 256, "items": {"type": "object", "required": ["id", "text"], "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 256}, "text": {"type": "string"}, "metadata": {"type": "object", "description": "the document's fields (scalars and arrays of scalars); a string 'title' becomes its title"}}}}}},
      "DocumentsResponse": {"type": "object", "properties": {"upserted": {"type": "integer"}, "documents": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}, "path": {"type": "string", "description": "doc:ID, as search hits name it"}, "chunks": {"type": "integer"}, "created": {"type": "boolean"}, "changed": {"type": "boolean"}}}}}}
    },
    "responses": {
      "BadRequest": {"description": "malformed JSON, wrong types, empty or invalid values", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unauthorized": {"description": "missing or wrong API key", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "TooLarge": {"description": "body, batch or text over the limits", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    }
  },
  "security": [{"bearer": []}],
  "paths": {
    "/health": {"get": {"security": [], "responses": {"200": {"description": "the server is up", "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"const": "ok"}}}}}}}}},
    "/openapi.json": {"get": {"responses": {"200": {"description": "this document"}}}},
    "/v1/embeddings": {"post": {"requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EmbeddingsRequest"}}}},
      "responses": {"200": {"description": "embeddings", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EmbeddingsResponse"}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "413": {"$ref": "#/components/responses/TooLarge"}}}},
    "/v1/rerank": {"post": {"requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RerankRequest"}}}},
      "responses": {"200": {"description": "documents by relevance, best first", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RerankResponse"}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "413": {"$ref": "#/components/responses/TooLarge"}}}},
    "/rerank": {"post": {"description": "Hugging Face TEI's rerank route (a server started with --reranker)", "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["query", "texts"], "properties": {"query": {"type": "string"}, "texts": {"type": "array", "items": {"type": "string"}, "minItems": 1}, "raw_scores": {"type": "boolean", "default": false}, "return_text": {"type": "boolean", "default": false}}}}}},
      "responses": {"200": {"description": "texts by score, best first", "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object", "properties": {"index": {"type": "integer"}, "score": {"type": "number"}, "text": {"type": "string"}}}}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "413": {"$ref": "#/components/responses/TooLarge"}}}},
    "/v1/search": {"post": {"requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SearchRequest"}}}},
      "responses": {"200": {"description": "hits, as sextant search --json prints them", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SearchResponse"}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "404": {"description": "unknown task", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
    "/v1/documents": {
      "get": {"parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}, {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}}, {"name": "where", "in": "query", "schema": {"type": "string"}, "description": "a JSON metadata filter"}, {"name": "path", "in": "query", "schema": {"type": "string"}, "description": "one document by path instead of a page"}],
        "responses": {"200": {"description": "a page of documents, or with path one document", "content": {"application/json": {"schema": {"oneOf": [{"$ref": "#/components/schemas/DocumentPage"}, {"$ref": "#/components/schemas/Document"}]}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "404": {"description": "no document at path", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}},
      "patch": {"parameters": [{"name": "path", "in": "query", "required": true, "schema": {"type": "string"}}], "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FieldsPatch"}}}},
        "responses": {"200": {"description": "the document with its fields", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Document"}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "404": {"description": "no such document", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}},
      "post": {"requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DocumentsRequest"}}}},
      "responses": {"200": {"description": "documents added or replaced (path doc:ID)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DocumentsResponse"}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "413": {"$ref": "#/components/responses/TooLarge"}}}},
    "/v1/documents/{id}": {
      "get": {"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "the document with its fields", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Document"}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}, "404": {"description": "no such document", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}},
      "patch": {"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}], "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FieldsPatch"}}}},
        "responses": {"200": {"description": "the document with its fields (nothing embedded again)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Document"}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "404": {"description": "no such document", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}},
      "delete": {"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
      "responses": {"200": {"description": "deleted", "content": {"application/json": {"schema": {"type": "object", "properties": {"id": {"type": "string"}, "deleted": {"type": "boolean"}}}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}, "404": {"description": "no such document", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
    "/v1/collections/info": {"get": {"responses": {"200": {"description": "documents, chunks, model, sizes (as sextant info --json)", "content": {"application/json": {"schema": {"type": "object"}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}}}
  }
}
"""#
