//! Batches of events that share one acknowledgement.

use crate::{AckToken, Event};

/// Events that travel together through a pipeline stage, with the token of the unit of work
/// they came from (if any: a source without acknowledgements sends `None`).
#[derive(Debug, Default)]
pub struct Batch {
    /// The events, in source order.
    pub events: Vec<Event>,
    /// Reports the batch's outcome to its source when the last holder drops it.
    pub ack: Option<AckToken>,
}

impl Batch {
    /// A batch with the given token and no events yet.
    pub fn new(ack: Option<AckToken>) -> Batch {
        Batch {
            events: Vec::new(),
            ack,
        }
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Total size of the events' encoded JSON, in bytes.
    pub fn byte_size(&self) -> usize {
        self.events.iter().map(|e| e.json().len()).sum()
    }
}
