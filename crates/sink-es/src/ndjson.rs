//! `type = "ndjson"`: documents as lines on stdout or in a file.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::EsError;
use crate::config::NdjsonConfig;
use crate::dead_letter::DeadLetterWriter;
use crate::encode::write_document;
use crate::event::EsEvent;
use crate::sink::{Counters, Outcomes, Sink};

/// Send calls the NDJSON output queues before [`Sink::send`] waits.
const QUEUE: usize = 16;

impl NdjsonConfig {
    /// Opens the file (or stdout) and starts the output on the current Tokio runtime. Events
    /// are acknowledged once their lines are flushed.
    pub fn build(
        &self,
        name: &str,
        dead_letter: Option<DeadLetterWriter>,
    ) -> Result<Sink, EsError> {
        self.validate()?;
        let out: Box<dyn Write + Send> = if self.path == "-" {
            Box::new(std::io::stdout())
        } else {
            let path = std::path::PathBuf::from(&self.path);
            let file_error = |source| EsError::File {
                key: "path",
                path: path.clone(),
                source,
            };
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(file_error)?;
            }
            Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(file_error)?,
            )
        };
        let counters = Arc::new(Counters::default());
        let outcomes = Outcomes {
            name: name.to_string(),
            dead_letter,
            counters: Arc::clone(&counters),
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let (cancel, _) = watch::channel(false);
        let task = tokio::task::spawn_blocking(move || {
            run(rx, BufWriter::with_capacity(256 * 1024, out), &outcomes)
        });
        Ok(Sink::new(name.to_string(), tx, task, cancel, counters))
    }
}

fn run(
    mut rx: mpsc::Receiver<Vec<EsEvent>>,
    mut out: BufWriter<Box<dyn Write + Send>>,
    outcomes: &Outcomes,
) {
    while let Some(events) = rx.blocking_recv() {
        let mut written = Ok(());
        for event in &events {
            written = write_document(&mut out, &event.json).and_then(|()| out.write_all(b"\n"));
            if written.is_err() {
                break;
            }
        }
        match written.and_then(|()| out.flush()) {
            Ok(()) => outcomes.delivered(events),
            Err(err) => {
                tracing::error!(output = %outcomes.name, error = %err, "NDJSON output failed.");
                outcomes.errored(events);
            }
        }
    }
}
