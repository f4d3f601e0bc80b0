//! Sink request bodies (HEC envelopes, Elasticsearch bulk lines) and gzip.
