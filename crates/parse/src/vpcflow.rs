//! VPC flow logs (`vpcflow`): the default version 2 layout or any custom layout.
//!
//! A flow log record is one line of space-separated values. Which fields it holds, and in
//! which order, is the flow log's format: the default (the 14 version 2 fields) or a custom
//! format chosen when the flow log was created. The layout comes from, by precedence:
//!
//! 1. a header line (files delivered to S3 start with the field names,
//!    `version account-id interface-id ...`): a line whose tokens are all distinct field
//!    names sets the layout for the rest of that input and carries no record;
//! 2. the `fields` option (`account-id` or `${account-id}` names separated by spaces);
//! 3. the default version 2 layout.
//!
//! Parsing validates every value once (integers, `-`, the field count) and keeps only the line
//! and the layout: values are sliced again when the record is serialized or read, so a record
//! costs no allocation and stays small whatever the layout.

use std::fmt;

use logferry_core::Timestamp;
use serde::ser::{Serialize, Serializer};

use crate::error::{FormatError, ParseError};
use crate::fields::{dash_none, parse_u64};
use crate::format::FormatOptions;
use crate::members::{self, MemberList, Members};

/// Options the `vpcflow` format takes.
pub(crate) const OPTIONS: &str = "fields";

/// Declares every field of AWS's "Available fields" table, in its order: the identifier, the
/// AWS name, the output (JSON) name and whether the value is an integer.
macro_rules! flow_fields {
    ($($variant:ident: $aws:literal => $json:literal, $int:literal;)*) => {
        /// A field of a flow log record.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum FieldId {
            $($variant,)*
        }

        impl FieldId {
            /// Every field, in the order of AWS's table.
            const ALL: &'static [FieldId] = &[$(FieldId::$variant,)*];

            /// The name AWS uses (`account-id`).
            fn aws_name(self) -> &'static str {
                match self {
                    $(FieldId::$variant => $aws,)*
                }
            }

            /// The output name (`account_id`).
            fn json_name(self) -> &'static str {
                match self {
                    $(FieldId::$variant => $json,)*
                }
            }

            /// Whether the value is an unsigned integer (output as a JSON number).
            fn is_int(self) -> bool {
                match self {
                    $(FieldId::$variant => $int,)*
                }
            }

            /// The field AWS calls `name`.
            fn from_aws_name(name: &str) -> Option<FieldId> {
                match name {
                    $($aws => Some(FieldId::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

flow_fields! {
    // Version 2 (the default format).
    Version: "version" => "version", true;
    AccountId: "account-id" => "account_id", false;
    InterfaceId: "interface-id" => "interface_id", false;
    Srcaddr: "srcaddr" => "srcaddr", false;
    Dstaddr: "dstaddr" => "dstaddr", false;
    Srcport: "srcport" => "srcport", true;
    Dstport: "dstport" => "dstport", true;
    Protocol: "protocol" => "protocol", true;
    Packets: "packets" => "packets", true;
    Bytes: "bytes" => "bytes", true;
    Start: "start" => "start", true;
    End: "end" => "end", true;
    Action: "action" => "action", false;
    LogStatus: "log-status" => "log_status", false;
    // Version 3.
    VpcId: "vpc-id" => "vpc_id", false;
    SubnetId: "subnet-id" => "subnet_id", false;
    InstanceId: "instance-id" => "instance_id", false;
    TcpFlags: "tcp-flags" => "tcp_flags", true;
    Type: "type" => "type", false;
    PktSrcaddr: "pkt-srcaddr" => "pkt_srcaddr", false;
    PktDstaddr: "pkt-dstaddr" => "pkt_dstaddr", false;
    // Version 4.
    Region: "region" => "region", false;
    AzId: "az-id" => "az_id", false;
    SublocationType: "sublocation-type" => "sublocation_type", false;
    SublocationId: "sublocation-id" => "sublocation_id", false;
    // Version 5.
    PktSrcAwsService: "pkt-src-aws-service" => "pkt_src_aws_service", false;
    PktDstAwsService: "pkt-dst-aws-service" => "pkt_dst_aws_service", false;
    FlowDirection: "flow-direction" => "flow_direction", false;
    TrafficPath: "traffic-path" => "traffic_path", true;
    // Version 7.
    EcsClusterArn: "ecs-cluster-arn" => "ecs_cluster_arn", false;
    EcsClusterName: "ecs-cluster-name" => "ecs_cluster_name", false;
    EcsContainerInstanceArn: "ecs-container-instance-arn" => "ecs_container_instance_arn", false;
    EcsContainerInstanceId: "ecs-container-instance-id" => "ecs_container_instance_id", false;
    EcsContainerId: "ecs-container-id" => "ecs_container_id", false;
    EcsSecondContainerId: "ecs-second-container-id" => "ecs_second_container_id", false;
    EcsServiceName: "ecs-service-name" => "ecs_service_name", false;
    EcsTaskDefinitionArn: "ecs-task-definition-arn" => "ecs_task_definition_arn", false;
    EcsTaskArn: "ecs-task-arn" => "ecs_task_arn", false;
    EcsTaskId: "ecs-task-id" => "ecs_task_id", false;
    // Version 8.
    RejectReason: "reject-reason" => "reject_reason", false;
    // Version 9.
    ResourceId: "resource-id" => "resource_id", false;
    // Version 10.
    EncryptionStatus: "encryption-status" => "encryption_status", true;
    // Version 11.
    InstanceTag: "instance-tag" => "instance_tag", false;
    InstanceTag2: "instance-tag-2" => "instance_tag_2", false;
    InterfaceTag: "interface-tag" => "interface_tag", false;
    InterfaceTag2: "interface-tag-2" => "interface_tag_2", false;
    AsgTag: "asg-tag" => "asg_tag", false;
    AsgTag2: "asg-tag-2" => "asg_tag_2", false;
    InterfaceType: "interface-type" => "interface_type", false;
    NextHopInterfaceId: "next-hop-interface-id" => "next_hop_interface_id", false;
    NextHopSubnetId: "next-hop-subnet-id" => "next_hop_subnet_id", false;
    NextHopAzId: "next-hop-az-id" => "next_hop_az_id", false;
    NextHopVpcId: "next-hop-vpc-id" => "next_hop_vpc_id", false;
    NextHopInterfaceType: "next-hop-interface-type" => "next_hop_interface_type", false;
}

/// Number of known fields: the most a layout can hold (names cannot repeat).
const FIELD_COUNT: usize = FieldId::ALL.len();

/// Number of fields of the default (version 2) format.
const DEFAULT_LEN: usize = 14;

impl FieldId {
    /// The field named `name` (`account-id`) or `${name}` (the LogFormat parameter's syntax).
    fn resolve(name: &str) -> Option<FieldId> {
        let name = name
            .strip_prefix("${")
            .and_then(|n| n.strip_suffix('}'))
            .unwrap_or(name);
        FieldId::from_aws_name(name)
    }
}

/// The fields of a record, in order: a fixed-size inline list, so copying it into every
/// record costs no allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Layout {
    ids: [FieldId; FIELD_COUNT],
    len: u8,
}

impl Layout {
    /// The default format: the version 2 fields in AWS's order.
    const DEFAULT: Layout = {
        let mut ids = [FieldId::Version; FIELD_COUNT];
        let mut i = 0;
        while i < DEFAULT_LEN {
            ids[i] = FieldId::ALL[i];
            i += 1;
        }
        Layout {
            ids,
            len: DEFAULT_LEN as u8,
        }
    };

    fn empty() -> Layout {
        Layout {
            ids: [FieldId::Version; FIELD_COUNT],
            len: 0,
        }
    }

    /// The fields, in order.
    fn ids(&self) -> &[FieldId] {
        self.ids.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Appends `id`; returns `false` (and leaves the layout alone) if it is already there.
    fn push(&mut self, id: FieldId) -> bool {
        if self.ids().contains(&id) {
            return false;
        }
        // Distinct ids never outnumber FIELD_COUNT, so there is always room here.
        let Some(slot) = self.ids.get_mut(usize::from(self.len)) else {
            return false;
        };
        *slot = id;
        self.len += 1;
        true
    }

    /// The layout of a header line, if `text` is one: every token a field name, none twice.
    fn from_header(text: &str) -> Option<Layout> {
        // Field names start with a lower-case letter (or `${`); records mostly with a digit.
        if !text.starts_with(|c: char| c.is_ascii_lowercase() || c == '$') {
            return None;
        }
        let mut layout = Layout::empty();
        for token in Tokens::new(text) {
            if !layout.push(FieldId::resolve(token)?) {
                return None;
            }
        }
        (layout.len > 0).then_some(layout)
    }
}

impl fmt::Debug for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.ids().iter().map(|id| id.aws_name()))
            .finish()
    }
}

/// Layout chosen by the format's options (`fields`), before any header line.
#[derive(Clone, Debug)]
pub(crate) struct VpcFlowOptions {
    layout: Layout,
}

impl VpcFlowOptions {
    /// Reads the `fields` option: field names separated by spaces, as `account-id` or
    /// `${account-id}`. Without it, the default version 2 layout.
    pub(crate) fn from_options(options: &FormatOptions) -> Result<VpcFlowOptions, FormatError> {
        let Some(fields) = options.get("fields") else {
            return Ok(VpcFlowOptions {
                layout: Layout::DEFAULT,
            });
        };
        let invalid = |reason: String| FormatError::InvalidOption {
            format: "vpcflow",
            option: "fields",
            reason,
        };
        let mut layout = Layout::empty();
        for name in fields.split_ascii_whitespace() {
            let id = FieldId::resolve(name).ok_or_else(|| {
                let known: Vec<&str> = FieldId::ALL.iter().map(|id| id.aws_name()).collect();
                invalid(format!(
                    "unknown field `{name}` (known fields: {})",
                    known.join(" ")
                ))
            })?;
            if !layout.push(id) {
                return Err(invalid(format!(
                    "field `{}` is listed twice",
                    id.aws_name()
                )));
            }
        }
        if layout.len == 0 {
            return Err(invalid("no field names given".to_owned()));
        }
        Ok(VpcFlowOptions { layout })
    }
}

/// The layout in force for one input; a header line replaces it.
#[derive(Debug)]
pub(crate) struct VpcFlowState {
    layout: Layout,
    /// The last time read and its value: records of one capture window share their `start`.
    last_time: Option<(u64, Timestamp)>,
}

impl VpcFlowState {
    /// A state starting with the layout of `options`.
    pub(crate) fn new(options: &VpcFlowOptions) -> VpcFlowState {
        VpcFlowState {
            layout: options.layout,
            last_time: None,
        }
    }

    /// `secs` (the value of `field`) as a timestamp.
    fn time(&mut self, secs: u64, field: &'static str) -> Result<Timestamp, ParseError> {
        if let Some((last, timestamp)) = self.last_time
            && last == secs
        {
            return Ok(timestamp);
        }
        let timestamp = i64::try_from(secs)
            .ok()
            .and_then(|secs| Timestamp::from_unix(secs, 0))
            .ok_or_else(|| {
                ParseError::invalid(field, "a Unix time in seconds (years 0 to 9999)")
            })?;
        self.last_time = Some((secs, timestamp));
        Ok(timestamp)
    }
}

/// Parses one line: a record, or `None` for a blank line or a header line (which sets the
/// layout for the following lines).
pub(crate) fn parse_line<'a>(
    state: &mut VpcFlowState,
    line: &'a str,
) -> Result<Option<VpcFlowRecord<'a>>, ParseError> {
    let text = line.trim_ascii();
    if text.is_empty() {
        return Ok(None);
    }
    if let Some(layout) = Layout::from_header(text) {
        state.layout = layout;
        return Ok(None);
    }
    parse_record(state, text).map(Some)
}

/// Checks every value of `text` against `layout` and finds the time.
fn parse_record<'a>(
    state: &mut VpcFlowState,
    text: &'a str,
) -> Result<VpcFlowRecord<'a>, ParseError> {
    let layout = state.layout;
    let mut tokens = Tokens::new(text);
    let (mut start, mut end) = (None, None);
    let ids = layout.ids();
    for &id in ids {
        let token = tokens
            .next()
            .ok_or_else(|| ParseError::missing(id.aws_name()))?;
        if id.is_int() && token != "-" {
            let value = parse_uint(token)
                .ok_or_else(|| ParseError::invalid(id.aws_name(), "an unsigned integer or `-`"))?;
            match id {
                FieldId::Start => start = Some(value),
                FieldId::End => end = Some(value),
                _ => {}
            }
        }
    }
    // Values after the layout's last field are ignored, like fields AWS may append to a
    // format in the future.
    let timestamp = match (start, end) {
        (Some(secs), _) => state.time(secs, "start")?,
        (None, Some(secs)) => state.time(secs, "end")?,
        (None, None) => Timestamp::now(),
    };
    Ok(VpcFlowRecord {
        timestamp,
        line: text,
        layout,
    })
}

/// Parses ASCII digits as a `u64` (`None` on anything else or overflow).
#[inline]
fn parse_uint(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    // Up to 19 digits cannot overflow a u64: no checked arithmetic needed.
    if bytes.is_empty() || bytes.len() > 19 {
        return parse_u64(text);
    }
    let mut value = 0u64;
    for &byte in bytes {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value * 10 + u64::from(digit);
    }
    Some(value)
}

/// The values of a record: runs of spaces separate them (AWS writes one space; a doubled space
/// does not make an empty field, which AWS never writes: it writes `-`).
///
/// Spaces are found eight bytes at a time (SWAR): a record is mostly short values, where a
/// byte loop or a `memchr` call per value costs more.
#[derive(Debug, Clone)]
struct Tokens<'a> {
    text: &'a str,
    /// Where the next value may start.
    pos: usize,
    /// Offset of the word `spaces` describes.
    word: usize,
    /// Spaces of that word not yet used: bit 7 of byte `i` is set for a space at `word + i`.
    spaces: u64,
}

const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const SPACES: u64 = 0x2020_2020_2020_2020;

/// The spaces of `word`: bit 7 of each byte that is `b' '`, exactly (no carry between bytes).
#[inline]
fn space_mask(word: u64) -> u64 {
    let x = word ^ SPACES;
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// The eight bytes at `at`, little-endian, padded with zeros (not spaces) past the end.
#[inline]
fn load(bytes: &[u8], at: usize) -> u64 {
    if let Some(&[a, b, c, d, e, f, g, h]) = bytes.get(at..at.saturating_add(8)) {
        return u64::from_le_bytes([a, b, c, d, e, f, g, h]);
    }
    // The tail: the last eight bytes of the text, shifted so that `at` comes first.
    let len = bytes.len();
    if let Some(&[a, b, c, d, e, f, g, h]) = bytes.get(len.wrapping_sub(8)..)
        && at < len
    {
        return u64::from_le_bytes([a, b, c, d, e, f, g, h]) >> (8 * (8 - (len - at)));
    }
    // Texts shorter than eight bytes.
    let mut buf = [0u8; 8];
    for (slot, byte) in buf.iter_mut().zip(bytes.get(at..).unwrap_or(&[])) {
        *slot = *byte;
    }
    u64::from_le_bytes(buf)
}

impl<'a> Tokens<'a> {
    fn new(text: &'a str) -> Tokens<'a> {
        Tokens {
            text,
            pos: 0,
            word: 0,
            spaces: space_mask(load(text.as_bytes(), 0)),
        }
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a str;

    #[inline(always)]
    fn next(&mut self) -> Option<&'a str> {
        let len = self.text.len();
        loop {
            if self.pos >= len {
                return None;
            }
            while self.spaces == 0 {
                self.word += 8;
                if self.word >= len {
                    // No space left: the value runs to the end.
                    let token = self.text.get(self.pos..).unwrap_or("");
                    self.pos = len;
                    return (!token.is_empty()).then_some(token);
                }
                self.spaces = space_mask(load(self.text.as_bytes(), self.word));
            }
            let space = self.word + (self.spaces.trailing_zeros() / 8) as usize;
            self.spaces &= self.spaces - 1;
            // `pos` and `space` are the end of the text or follow / are an ASCII space: char
            // boundaries, so `get` always succeeds.
            let token = self.text.get(self.pos..space).unwrap_or("");
            self.pos = space + 1;
            if !token.is_empty() {
                return Some(token);
            }
        }
    }
}

/// One VPC flow log record.
///
/// Serializes to `@timestamp` followed by the layout's fields in order, under AWS's names with
/// `-` replaced by `_` (`account_id`, `log_status`, `tcp_flags`, ...). Integer fields
/// (`version`, `srcport`, `dstport`, `protocol`, `packets`, `bytes`, `start`, `end`,
/// `tcp_flags`, `traffic_path`, `encryption_status`) are JSON numbers; values written as `-`
/// are omitted.
///
/// ```
/// use logferry_parse::{Format, FormatOptions, Record};
///
/// let options = FormatOptions::new().with("fields", "${instance-id} ${interface-id} ${srcaddr} ${dstaddr}");
/// let format = Format::new("vpcflow", &options).unwrap();
/// let mut parser = format.line_parser();
/// let Some(Record::VpcFlow(record)) = parser.parse_line("- eni-1235b8ca123456789 10.0.1.5 10.0.0.220").unwrap() else {
///     panic!("a VPC flow log record");
/// };
/// assert_eq!(record.get("srcaddr"), Some("10.0.1.5"));
/// assert_eq!(record.get("instance-id"), None);
/// ```
#[derive(Debug, Clone)]
pub struct VpcFlowRecord<'a> {
    timestamp: Timestamp,
    /// The validated line, trimmed.
    line: &'a str,
    layout: Layout,
}

impl<'a> VpcFlowRecord<'a> {
    /// The event time: `start`, else `end` when the layout has no `start` (or it is `-`),
    /// else the time the line was read.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The fields of the record in layout order: AWS's name and the value as written, `None`
    /// for `-`.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, Option<&'a str>)> + '_ {
        self.pairs()
            .map(|(id, value)| (id.aws_name(), dash_none(value)))
    }

    /// The value of the field AWS calls `field` (`srcaddr`, `log-status`), as written; `None`
    /// when the layout lacks it or its value is `-`.
    pub fn get(&self, field: &str) -> Option<&'a str> {
        let wanted = FieldId::resolve(field)?;
        self.pairs()
            .find(|(id, _)| *id == wanted)
            .and_then(|(_, value)| dash_none(value))
    }

    fn pairs(&self) -> impl Iterator<Item = (FieldId, &'a str)> + '_ {
        self.layout
            .ids()
            .iter()
            .copied()
            .zip(Tokens::new(self.line))
    }
}

impl MemberList for VpcFlowRecord<'_> {
    /// The JSON members, in order (see the type's documentation).
    fn members<M: Members>(&self, out: &mut M) -> Result<(), M::Error> {
        out.member("@timestamp", &self.timestamp)?;
        let mut tokens = Tokens::new(self.line);
        for &id in self.layout.ids() {
            let Some(value) = tokens.next() else { break };
            if value == "-" {
                continue;
            }
            // Integers were validated by the parser: the text fallback is never taken for them.
            match id.is_int().then(|| parse_uint(value)).flatten() {
                Some(number) => out.member(id.json_name(), &number)?,
                None => out.member(id.json_name(), value)?,
            }
        }
        Ok(())
    }
}

impl Serialize for VpcFlowRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        members::serialize_map(self, serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ParseErrorKind;

    const ACCEPT: &str = "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK";

    fn default_state() -> VpcFlowState {
        VpcFlowState::new(&VpcFlowOptions::from_options(&FormatOptions::new()).unwrap())
    }

    fn state_with(fields: &str) -> VpcFlowState {
        let options = FormatOptions::new().with("fields", fields);
        VpcFlowState::new(&VpcFlowOptions::from_options(&options).unwrap())
    }

    /// serde_json's text for `record`, after checking that the direct writer gives the same.
    fn json(record: &VpcFlowRecord<'_>) -> String {
        let text = serde_json::to_string(record).unwrap();
        let mut fast = String::new();
        record.write_json_str(&mut fast);
        assert_eq!(fast, text);
        text
    }

    #[test]
    fn field_table_is_consistent() {
        assert_eq!(FIELD_COUNT, 54);
        for (i, id) in FieldId::ALL.iter().enumerate() {
            assert_eq!(*id as usize, i);
            assert_eq!(FieldId::from_aws_name(id.aws_name()), Some(*id));
            assert_eq!(id.json_name(), id.aws_name().replace('-', "_"));
        }
        let default: Vec<&str> = Layout::DEFAULT
            .ids()
            .iter()
            .map(|id| id.aws_name())
            .collect();
        assert_eq!(
            default.join(" "),
            "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
        );
    }

    #[test]
    fn tokens_skip_runs_of_spaces() {
        let tokens: Vec<&str> = Tokens::new("a  b c   d").collect();
        assert_eq!(tokens, ["a", "b", "c", "d"]);
        assert_eq!(Tokens::new("").next(), None);
        assert_eq!(Tokens::new("   ").next(), None);
        let tokens: Vec<&str> = Tokens::new("é ü  ß").collect();
        assert_eq!(tokens, ["é", "ü", "ß"]);
    }

    proptest::proptest! {
        #[test]
        fn tokens_match_a_plain_split(text in "[ a\u{e9}\u{1F600}-]{0,40}") {
            let expected: Vec<&str> = text.split(' ').filter(|t| !t.is_empty()).collect();
            let actual: Vec<&str> = Tokens::new(&text).collect();
            proptest::prop_assert_eq!(actual, expected);
        }

        #[test]
        fn parse_uint_matches_std(text in "[0-9]{0,20}|\\PC{0,5}") {
            proptest::prop_assert_eq!(parse_uint(&text), text.parse::<u64>().ok().filter(|_| !text.starts_with('+')));
        }
    }

    #[test]
    fn default_layout_serializes_in_order() {
        let mut state = default_state();
        let record = parse_line(&mut state, ACCEPT).unwrap().unwrap();
        assert_eq!(
            json(&record),
            r#"{"@timestamp":"2014-12-14T04:06:50Z","version":2,"account_id":"123456789010","interface_id":"eni-1235b8ca123456789","srcaddr":"172.31.16.139","dstaddr":"172.31.16.21","srcport":20641,"dstport":22,"protocol":6,"packets":20,"bytes":4249,"start":1418530010,"end":1418530070,"action":"ACCEPT","log_status":"OK"}"#
        );
        assert_eq!(record.get("log-status"), Some("OK"));
        assert_eq!(record.get("${dstport}"), Some("22"));
        assert_eq!(record.get("tcp-flags"), None);
        assert_eq!(record.fields().count(), 14);
    }

    #[test]
    fn dashes_are_omitted() {
        let mut state = default_state();
        let line =
            "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA";
        let record = parse_line(&mut state, line).unwrap().unwrap();
        assert_eq!(
            json(&record),
            r#"{"@timestamp":"2015-05-10T18:01:16Z","version":2,"account_id":"123456789010","interface_id":"eni-1235b8ca123456789","start":1431280876,"end":1431280934,"log_status":"NODATA"}"#
        );
        assert_eq!(record.get("srcaddr"), None);
    }

    #[test]
    fn header_line_sets_the_layout() {
        let mut state = default_state();
        let header = "version srcaddr dstaddr tcp-flags end";
        assert!(parse_line(&mut state, header).unwrap().is_none());
        let record = parse_line(&mut state, "5 10.0.0.1 10.0.0.2 19 1616729349")
            .unwrap()
            .unwrap();
        assert_eq!(
            json(&record),
            r#"{"@timestamp":"2021-03-26T03:29:09Z","version":5,"srcaddr":"10.0.0.1","dstaddr":"10.0.0.2","tcp_flags":19,"end":1616729349}"#
        );
        // The default layout no longer applies.
        assert_eq!(
            parse_line(&mut state, ACCEPT).unwrap_err().field(),
            "tcp-flags"
        );
    }

    #[test]
    fn header_wins_over_the_option() {
        let mut state = state_with("srcaddr dstaddr");
        assert!(
            parse_line(&mut state, "${srcport} ${dstport}")
                .unwrap()
                .is_none()
        );
        let record = parse_line(&mut state, "80 443").unwrap().unwrap();
        assert_eq!(record.get("dstport"), Some("443"));
    }

    #[test]
    fn lines_of_names_with_a_repeat_or_a_value_are_records() {
        assert!(Layout::from_header("srcaddr srcaddr").is_none());
        assert!(Layout::from_header("srcaddr 10.0.0.1").is_none());
        assert!(Layout::from_header("2 srcaddr").is_none());
        assert!(Layout::from_header("version account-id").is_some());
        let mut state = state_with("instance-tag interface-tag");
        let record = parse_line(&mut state, "start start").unwrap().unwrap();
        assert_eq!(record.get("interface-tag"), Some("start"));
    }

    #[test]
    fn option_accepts_both_syntaxes_and_refuses_unknown_names() {
        let state = state_with("${version}  account-id\t${log-status}");
        assert_eq!(
            format!("{:?}", state.layout),
            r#"["version", "account-id", "log-status"]"#
        );
        let err = |fields: &str| {
            VpcFlowOptions::from_options(&FormatOptions::new().with("fields", fields))
                .unwrap_err()
                .to_string()
        };
        let unknown = err("version accountid");
        assert!(unknown.contains("`accountid`"), "{unknown}");
        assert!(unknown.contains("fields"), "{unknown}");
        assert!(err("srcaddr ${srcaddr}").contains("twice"));
        assert!(err("  ").contains("no field names"));
        assert!(err("${version").contains("`${version`"));
    }

    #[test]
    fn timestamp_falls_back_to_end_then_now() {
        let mut state = state_with("start end");
        let record = parse_line(&mut state, "- 1418530070").unwrap().unwrap();
        assert_eq!(record.timestamp().to_string(), "2014-12-14T04:07:50Z");
        let before = Timestamp::now();
        let record = parse_line(&mut state, "- -").unwrap().unwrap();
        assert!(record.timestamp() >= before && record.timestamp() <= Timestamp::now());
        let mut state = state_with("srcaddr");
        let record = parse_line(&mut state, "10.0.0.1").unwrap().unwrap();
        assert!(record.timestamp() >= before);
    }

    #[test]
    fn errors_name_the_field() {
        let mut state = default_state();
        let cases = [
            (
                "2 123456789010 eni-1 a b 20641",
                "dstport",
                ParseErrorKind::Missing,
            ),
            (
                "2 123456789010 eni-1 a b x 22 6 20 4249 1418530010 1418530070 ACCEPT OK",
                "srcport",
                ParseErrorKind::Invalid {
                    expected: "an unsigned integer or `-`",
                },
            ),
            (
                "2 123456789010 eni-1 a b 1 22 6 20 -4249 1418530010 1418530070 ACCEPT OK",
                "bytes",
                ParseErrorKind::Invalid {
                    expected: "an unsigned integer or `-`",
                },
            ),
            (
                "2 1 eni-1 a b 1 22 6 20 4249 99999999999999 1418530070 ACCEPT OK",
                "start",
                ParseErrorKind::Invalid {
                    expected: "a Unix time in seconds (years 0 to 9999)",
                },
            ),
            (
                "2 1 eni-1 a b 1 22 6 20 4249 18446744073709551616 1 ACCEPT OK",
                "start",
                ParseErrorKind::Invalid {
                    expected: "an unsigned integer or `-`",
                },
            ),
        ];
        for (line, field, kind) in cases {
            let err = parse_line(&mut state, line).unwrap_err();
            assert_eq!((err.field(), err.kind()), (field, &kind), "{line}");
        }
        let mut state = state_with("end");
        assert_eq!(
            parse_line(&mut state, "18446744073709551615")
                .unwrap_err()
                .field(),
            "end"
        );
    }

    #[test]
    fn values_after_the_last_field_are_ignored() {
        let mut state = default_state();
        let line = format!("{ACCEPT} 3 extra");
        let record = parse_line(&mut state, &line).unwrap().unwrap();
        assert_eq!(record.fields().count(), 14);
        assert!(!json(&record).contains("extra"));
    }

    #[test]
    fn blank_lines_and_surrounding_whitespace() {
        let mut state = default_state();
        assert!(parse_line(&mut state, "  \t ").unwrap().is_none());
        let padded = format!("  {ACCEPT} \r");
        let record = parse_line(&mut state, &padded).unwrap().unwrap();
        assert_eq!(record.get("log-status"), Some("OK"));
    }

    #[test]
    fn every_layout_field_round_trips() {
        let names: Vec<&str> = FieldId::ALL.iter().map(|id| id.aws_name()).collect();
        let mut state = state_with(&names.join(" "));
        let values: Vec<String> = FieldId::ALL
            .iter()
            .enumerate()
            .map(|(i, id)| {
                if id.is_int() {
                    (1000 + i).to_string()
                } else {
                    format!("V{i}")
                }
            })
            .collect();
        let line = values.join(" ");
        let record = parse_line(&mut state, &line).unwrap().unwrap();
        let object: serde_json::Value = serde_json::from_str(&json(&record)).unwrap();
        for (i, id) in FieldId::ALL.iter().enumerate() {
            let expected = if id.is_int() {
                serde_json::json!(1000 + i)
            } else {
                serde_json::json!(format!("V{i}"))
            };
            assert_eq!(object[id.json_name()], expected, "{}", id.aws_name());
        }
    }
}
