//! Groups consecutive records with the same tag into batches.

use std::sync::Arc;

use crate::{SyslogBatch, SyslogRecord};

/// Collects records; a batch closes when the tag changes or it holds `max` records.
#[derive(Debug)]
pub(crate) struct Batcher {
    max: usize,
    tag: Option<Arc<str>>,
    records: Vec<SyslogRecord>,
    ready: Vec<SyslogBatch>,
}

impl Batcher {
    pub(crate) fn new(max: usize) -> Batcher {
        Batcher {
            max: max.max(1),
            tag: None,
            records: Vec::new(),
            ready: Vec::new(),
        }
    }

    /// Adds a record tagged `tag`.
    pub(crate) fn push(&mut self, tag: &Arc<str>, record: SyslogRecord) {
        let same = self
            .tag
            .as_ref()
            .is_some_and(|t| Arc::ptr_eq(t, tag) || t == tag);
        if !same || self.records.len() >= self.max {
            self.close();
            self.tag = Some(Arc::clone(tag));
        }
        self.records.push(record);
    }

    /// Whether no record is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty() && self.ready.is_empty()
    }

    /// Every batch, the open one closed, in order.
    pub(crate) fn take(&mut self) -> std::vec::Drain<'_, SyslogBatch> {
        self.close();
        self.ready.drain(..)
    }

    fn close(&mut self) {
        if self.records.is_empty() {
            return;
        }
        let records = std::mem::take(&mut self.records);
        let tag = self.tag.clone().expect("records have a tag");
        self.ready.push(SyslogBatch::new(tag, records));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logferry_core::Timestamp;

    #[test]
    fn splits_on_tag_changes_and_size() {
        let record = |s: &str| SyslogRecord {
            time: Timestamp::from_unix(0, 0).unwrap(),
            json: s.to_owned(),
        };
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let mut batcher = Batcher::new(2);
        for (tag, json) in [(&a, "1"), (&a, "2"), (&a, "3"), (&b, "4"), (&a, "5")] {
            batcher.push(tag, record(json));
        }
        let batches: Vec<(String, Vec<String>)> = batcher
            .take()
            .map(|b| {
                (
                    b.tag.to_string(),
                    b.records.into_iter().map(|r| r.json).collect(),
                )
            })
            .collect();
        assert_eq!(
            batches,
            [
                ("a".into(), vec!["1".into(), "2".into()]),
                ("a".into(), vec!["3".into()]),
                ("b".into(), vec!["4".into()]),
                ("a".into(), vec!["5".into()]),
            ]
        );
        assert!(batcher.is_empty());
    }
}
