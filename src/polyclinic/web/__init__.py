"""The shared web kit: the response envelope, errors, paging, OpenAPI responses, request ids,
bearer tokens and their signing, the caller, health, and the app's runtime. It knows no
domain."""
