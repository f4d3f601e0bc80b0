//! JSON text exactly as orjson writes it (filled in with the mapper).
