//! Embeds `logferry-parse`: counts events per HTTP status in an ALB log (plain, gzip or zstd).
//!
//! ```sh
//! cargo run -p logferry-examples --example parse_file -- examples/samples/alb.log.gz
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;

use logferry_parse::{DecodeOptions, Format, FormatOptions, Record};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: parse_file ALB_LOG")?;
    let format = Format::new("alb", &FormatOptions::new())?;
    let (_, reader) = logferry_parse::decompress(BufReader::new(File::open(&path)?))?;
    let mut per_status: BTreeMap<String, u64> = BTreeMap::new();
    let summary = format.decode(reader, &DecodeOptions::default(), |item| match item {
        Ok(located) => {
            // Records serialize to JSON; here we look at one field through serde_json.
            if let Record::Alb(_) = &located.record {
                let json = serde_json::to_value(&located.record).unwrap_or_default();
                let status = json["elb_status_code"].to_string();
                *per_status.entry(status).or_default() += 1;
            }
        }
        Err(e) => eprintln!("{path}:{}: {}", e.line, e.error),
    })?;
    for (status, count) in &per_status {
        println!("{status}\t{count}");
    }
    eprintln!("{} records, {} errors", summary.records, summary.errors);
    Ok(())
}
