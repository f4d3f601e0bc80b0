//! Fuzz the chunk entry point: arbitrary bytes, cut into records at b'\n', mapped for
//! every view. `map_chunk` turns a panic into a `mapping_failed` rejection, so the
//! target asks `map_record` directly (a panic must crash the fuzzer, not be absorbed)
//! and checks what the engine promises: every mapped document is one JSON object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wmf_core::mapping::map_record;
use wmf_core::{ChunkIn, RecordIn, View};

const VIEWS: [View; 5] = [
    View::Ocsf { raw_data: true },
    View::Ocsf { raw_data: false },
    View::Ecs { raw_data: true },
    View::Ecs { raw_data: false },
    View::Raw,
];
const LOG_TYPES: [Option<&str>; 3] = [None, Some("AUTHENTICATION_LOGS"), Some("EMAIL_EVENT_LOGS")];

fuzz_target!(|data: &[u8]| {
    let records: Vec<RecordIn<'_>> = data
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, raw)| RecordIn {
            raw,
            log_type: LOG_TYPES[i % LOG_TYPES.len()],
            source_time: if i % 2 == 0 { 0.0 } else { 1_718_182_800.5 },
            partition: "fuzz/p",
            offset: i as i64,
        })
        .collect();
    let chunk = ChunkIn {
        records,
        views: VIEWS.to_vec(),
        source_id: "fuzz",
        now_ms: 1_718_200_000_000,
    };
    for record in &chunk.records {
        if let Ok(mapped) = map_record(&chunk, record) {
            assert_eq!(mapped.docs.len(), VIEWS.len());
            assert_eq!(mapped.id.len(), 32);
            for doc in &mapped.docs {
                let value: serde_json::Value =
                    serde_json::from_slice(doc).expect("a mapped document is JSON");
                assert!(value.is_object(), "a mapped document is an object");
            }
        }
    }
});
