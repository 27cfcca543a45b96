//! The persisted identity of a buffer chunk, from which its object key is rendered.

use std::fmt::Write as _;

use logferry_core::Timestamp;

/// What the key of a chunk's object is rendered from. Every field is persisted with the chunk
/// by the buffer, so a retried or post-crash upload of the same chunk renders the same key and
/// overwrites the same object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChunkIdentity {
    /// The records' tag (`s3.var.log.app`); `${tag}` and `${tag[N]}`.
    pub tag: String,
    /// Start of the chunk's time slice; `%{time_slice}` and the `%Y`-style fields.
    pub timekey: Timestamp,
    /// Sequence number of the chunk; `%{index}`.
    pub seq: u64,
    /// Unique id of the chunk (random); `%{uuid_flush}`, `%{hex_random}`, `${chunk_id}`.
    pub id: [u8; 16],
    /// When the chunk was sealed; `%{hms_slice}`.
    pub sealed_at: Timestamp,
}

impl ChunkIdentity {
    /// The id as 32 lowercase hex digits (`${chunk_id}`, as fluentd dumps a chunk id).
    pub fn id_hex(&self) -> String {
        let mut out = String::with_capacity(32);
        for byte in self.id {
            let _ = write!(out, "{byte:02x}");
        }
        out
    }

    /// The id formatted as a UUID: `8-4-4-4-12` lowercase hex digits (`%{uuid_flush}`).
    pub fn id_uuid(&self) -> String {
        let hex = self.id_hex();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_ids() {
        let id = ChunkIdentity {
            tag: "a".into(),
            timekey: Timestamp::UNIX_EPOCH,
            seq: 0,
            id: [
                0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17,
                0x40, 0x00,
            ],
            sealed_at: Timestamp::UNIX_EPOCH,
        };
        assert_eq!(id.id_hex(), "123e4567e89b12d3a456426614174000");
        assert_eq!(id.id_uuid(), "123e4567-e89b-12d3-a456-426614174000");
    }
}
