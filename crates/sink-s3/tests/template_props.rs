//! Properties of key templates: rendering never panics, is deterministic, and
//! `%{uuid_flush}` keeps distinct chunks apart.

use logferry_core::Timestamp;
use logferry_sink_s3::{ChunkIdentity, KeyTemplate};
use proptest::prelude::*;

fn identity() -> impl Strategy<Value = ChunkIdentity> {
    (
        "[a-z0-9]{0,8}(\\.[a-z0-9_-]{0,8}){0,4}",
        0i64..253_402_300_799,
        any::<u64>(),
        any::<[u8; 16]>(),
        0i64..253_402_300_799,
        0u32..1_000_000_000,
    )
        .prop_map(|(tag, timekey, seq, id, sealed, nanos)| ChunkIdentity {
            tag,
            timekey: Timestamp::from_unix(timekey, 0).unwrap(),
            seq,
            id,
            sealed_at: Timestamp::from_unix(sealed, nanos).unwrap(),
        })
}

/// Templates built from every kind of piece, valid or not.
fn template_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-z/._-]{0,6}",
        Just("%{path}".to_string()),
        Just("%{time_slice}".to_string()),
        Just("%{index}".to_string()),
        Just("%{file_extension}".to_string()),
        Just("%{uuid_flush}".to_string()),
        Just("%{hex_random}".to_string()),
        Just("%{hms_slice}".to_string()),
        Just("%{hostname}".to_string()),
        Just("${tag}".to_string()),
        Just("${chunk_id}".to_string()),
        (-6i64..6).prop_map(|n| format!("${{tag[{n}]}}")),
        "%[-_0^#:]{0,2}[0-9]{0,2}[a-zA-Z%]",
        "[%${}]{1,2}",
    ];
    proptest::collection::vec(piece, 0..10).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn rendering_never_panics_and_is_deterministic(
        format in template_text(),
        slice in "(%[YmdHMSjyblILNsuwUWVGgz]|[a-z._-]){0,6}",
        utc in any::<bool>(),
        hex in 1usize..=16,
        chunk in identity(),
    ) {
        let built = KeyTemplate::builder(format.as_str())
            .path("p/")
            .time_slice_format(slice)
            .hex_random_length(hex)
            .index_format("%08x")
            .utc(utc)
            .build();
        if let Ok(template) = built {
            let key = template.render(&chunk);
            prop_assert_eq!(&key, &template.render(&chunk.clone()));
            prop_assert_eq!(&key, &template.clone().render(&chunk));
        }
    }

    #[test]
    fn uuid_flush_separates_distinct_chunks(
        prefix in template_text(),
        a in identity(),
        b_id in any::<[u8; 16]>(),
        utc in any::<bool>(),
    ) {
        prop_assume!(a.id != b_id);
        // A separator, so a trailing `%` of the prefix cannot escape the placeholder.
        let format = format!("{prefix}/%{{uuid_flush}}");
        if let Ok(template) = KeyTemplate::builder(format.as_str()).utc(utc).build() {
            let b = ChunkIdentity { id: b_id, ..a.clone() };
            prop_assert_ne!(template.render(&a), template.render(&b));
        }
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(format in "\\PC{0,40}", slice in "\\PC{0,20}") {
        let _ = KeyTemplate::builder(format).time_slice_format(slice).build();
    }
}

#[test]
fn most_generated_templates_parse() {
    // Guards against generators that only yield invalid templates (and so test nothing).
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = template_text();
    let parsed = (0..500)
        .filter(|_| {
            let format = strategy.new_tree(&mut runner).unwrap().current();
            KeyTemplate::parse(&format).is_ok()
        })
        .count();
    assert!(
        parsed > 100,
        "only {parsed} of 500 generated templates parse"
    );
}
