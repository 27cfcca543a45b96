//! RFC 6587 framing of a TCP stream: octet-counting (`LEN SP MSG`) and newline-delimited
//! messages, told apart per message, with a maximum message size.

use bytes::{Buf, Bytes, BytesMut};

/// Most digits of an octet count (`999999999` bytes, far above any accepted limit): a longer
/// run of digits is not a count, and the frame is read as newline-delimited.
const MAX_COUNT_DIGITS: usize = 9;

/// One message cut out of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Frame {
    /// The message, without its count or its newline; at most the maximum size.
    pub data: Bytes,
    /// Whether the message was longer than the maximum and cut to it.
    pub truncated: bool,
}

/// What is being skipped after a truncated frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Skip {
    Nothing,
    /// The rest of an octet-counted frame.
    Bytes(usize),
    /// The rest of a newline-delimited frame, up to and including its newline.
    ToNewline,
}

/// How the frame at the head of the buffer is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Head {
    /// Too few bytes to tell.
    Unknown,
    /// `LEN SP`: the header's length and the count.
    Counted { header: usize, len: usize },
    /// Anything else: the frame ends at the next newline.
    Newline,
}

/// Cuts RFC 6587 frames out of the bytes of one stream (a TCP or TLS connection): octet-counted
/// (`LEN SP MSG`) and newline-delimited messages, told apart per message. It holds at most one
/// maximum-size message plus the header of the next: bytes beyond a frame's maximum are
/// skipped, never buffered. The frames do not depend on how the stream was split into reads.
///
/// ```
/// use logferry_source_syslog::FrameDecoder;
///
/// let mut decoder = FrameDecoder::new(16);
/// decoder.extend(b"11 <13>counted<13>newline\n<13>far too long for the limit\n<13>la");
/// decoder.extend(b"st");
/// let mut frames = Vec::new();
/// while let Some(frame) = decoder.next_frame() {
///     frames.push((frame.data.to_vec(), frame.truncated));
/// }
/// frames.extend(decoder.finish().unwrap().map(|f| (f.data.to_vec(), f.truncated)));
/// assert_eq!(frames, [
///     (b"<13>counted".to_vec(), false),
///     (b"<13>newline".to_vec(), false),
///     (b"<13>far too long".to_vec(), true),
///     (b"<13>last".to_vec(), false),
/// ]);
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max: usize,
    skip: Skip,
}

impl FrameDecoder {
    /// A decoder that keeps at most `max` bytes of each message (`max` > 0).
    pub fn new(max: usize) -> FrameDecoder {
        FrameDecoder {
            buf: BytesMut::new(),
            max: max.max(1),
            skip: Skip::Nothing,
        }
    }

    /// Adds bytes read from the connection.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// How many more bytes the decoder can usefully take before [`FrameDecoder::next_frame`] must be
    /// called: reads are sized by it so the buffer stays bounded.
    pub fn room(&self) -> usize {
        (self.max + MAX_COUNT_DIGITS + 2)
            .saturating_sub(self.buf.len())
            .max(1)
    }

    /// The next complete frame, if the buffer holds one.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            match self.skip {
                Skip::Nothing => {}
                Skip::Bytes(n) => {
                    let k = n.min(self.buf.len());
                    self.buf.advance(k);
                    if k < n {
                        self.skip = Skip::Bytes(n - k);
                        return None;
                    }
                    self.skip = Skip::Nothing;
                }
                Skip::ToNewline => match memchr::memchr(b'\n', &self.buf) {
                    Some(i) => {
                        self.buf.advance(i + 1);
                        self.skip = Skip::Nothing;
                    }
                    None => {
                        self.buf.clear();
                        return None;
                    }
                },
            }
            if self.buf.is_empty() {
                return None;
            }
            match head(&self.buf) {
                Head::Unknown => return None,
                Head::Counted { header, len } => {
                    let keep = len.min(self.max);
                    if self.buf.len() < header + keep {
                        return None;
                    }
                    self.buf.advance(header);
                    let data = self.buf.split_to(keep).freeze();
                    if len > keep {
                        self.skip = Skip::Bytes(len - keep);
                    }
                    return Some(Frame {
                        data,
                        truncated: len > keep,
                    });
                }
                Head::Newline => {
                    let window = &self.buf[..self.buf.len().min(self.max + 1)];
                    if let Some(i) = memchr::memchr(b'\n', window) {
                        let mut data = self.buf.split_to(i + 1);
                        data.truncate(trim_end(&data[..i]).len());
                        if data.is_empty() {
                            continue; // an empty line between frames
                        }
                        return Some(Frame {
                            data: data.freeze(),
                            truncated: false,
                        });
                    }
                    if self.buf.len() <= self.max {
                        return None;
                    }
                    let data = self.buf.split_to(self.max).freeze();
                    self.skip = Skip::ToNewline;
                    return Some(Frame {
                        data,
                        truncated: true,
                    });
                }
            }
        }
    }

    /// The connection ended: the last frame if it is a newline-delimited one without its
    /// newline, `Err(bytes)` with the number of bytes thrown away if an octet-counted frame was
    /// cut short.
    pub fn finish(&mut self) -> Result<Option<Frame>, usize> {
        if let Some(frame) = self.next_frame() {
            return Ok(Some(frame));
        }
        if self.skip != Skip::Nothing || self.buf.is_empty() {
            self.buf.clear();
            return Ok(None);
        }
        let rest = self.buf.split();
        match head(&rest) {
            Head::Newline => {
                let len = trim_end(&rest).len();
                Ok((len > 0).then(|| Frame {
                    data: rest.freeze().slice(..len),
                    truncated: false,
                }))
            }
            Head::Unknown | Head::Counted { .. } => Err(rest.len()),
        }
    }
}

/// Reads the framing of the frame that starts `buf` (non-empty): a non-zero digit, digits and a
/// space are an octet count (RFC 6587 `MSG-LEN SP`).
fn head(buf: &[u8]) -> Head {
    if !matches!(buf[0], b'1'..=b'9') {
        return Head::Newline;
    }
    let digits = buf.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > MAX_COUNT_DIGITS {
        return Head::Newline;
    }
    match buf.get(digits) {
        None => Head::Unknown,
        Some(b' ') => Head::Counted {
            header: digits + 1,
            len: buf[..digits]
                .iter()
                .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0')),
        },
        Some(_) => Head::Newline,
    }
}

/// `bytes` without trailing `\r`, `\n` and NUL bytes.
pub(crate) fn trim_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b'\r' | b'\n' | 0))
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `chunks` one at a time and collects every frame (and the end of the stream).
    fn decode(max: usize, chunks: &[&[u8]]) -> (Vec<(String, bool)>, Result<(), usize>) {
        let mut decoder = FrameDecoder::new(max);
        let mut frames = Vec::new();
        let mut push =
            |f: Frame| frames.push((String::from_utf8(f.data.to_vec()).unwrap(), f.truncated));
        for chunk in chunks {
            decoder.extend(chunk);
            while let Some(f) = decoder.next_frame() {
                push(f);
            }
            assert!(decoder.buf.len() <= max + MAX_COUNT_DIGITS + 2 + chunk.len());
        }
        let end = match decoder.finish() {
            Ok(Some(f)) => {
                push(f);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(n) => Err(n),
        };
        (frames, end)
    }

    fn whole(s: &str) -> (String, bool) {
        (s.to_owned(), false)
    }

    #[test]
    fn newline_delimited() {
        let (frames, end) = decode(100, &[b"<13>a\n<13>b\r\n\n<13>c"]);
        assert_eq!(frames, [whole("<13>a"), whole("<13>b"), whole("<13>c")]);
        assert_eq!(end, Ok(()));
    }

    #[test]
    fn octet_counted() {
        let (frames, end) = decode(100, &[b"5 <13>a7 <13>b\nc"]);
        assert_eq!(frames, [whole("<13>a"), whole("<13>b\nc")]);
        assert_eq!(end, Ok(()));
    }

    #[test]
    fn mixed_on_one_connection() {
        let (frames, _) = decode(100, &[b"5 <13>a<13>b\n6 <13>cd<13>e\n"]);
        assert_eq!(
            frames,
            [
                whole("<13>a"),
                whole("<13>b"),
                whole("<13>cd"),
                whole("<13>e")
            ]
        );
    }

    #[test]
    fn frames_split_across_reads() {
        let stream: &[u8] = b"12 <13>hello wo<13>second line\n3 abc";
        for size in 1..stream.len() {
            let chunks: Vec<&[u8]> = stream.chunks(size).collect();
            let (frames, end) = decode(100, &chunks);
            assert_eq!(
                frames,
                [
                    whole("<13>hello wo"),
                    whole("<13>second line"),
                    whole("abc")
                ],
                "chunks of {size}"
            );
            assert_eq!(end, Ok(()));
        }
    }

    #[test]
    fn oversized_frames_are_truncated_and_the_rest_skipped() {
        let (frames, _) = decode(4, &[b"10 0123456789", b"3 abc", b"abcdefgh\nxy\n"]);
        assert_eq!(
            frames,
            [
                ("0123".into(), true),
                whole("abc"),
                ("abcd".into(), true),
                whole("xy")
            ]
        );
        // The skipped part arrives in small reads and is never buffered.
        let mut chunks: Vec<&[u8]> = vec![b"1000000 "];
        let filler = [b'x'; 1000];
        chunks.extend(std::iter::repeat_n(&filler[..], 1000));
        chunks.push(b"2 ok");
        let (frames, end) = decode(8, &chunks);
        assert_eq!(frames, [("xxxxxxxx".into(), true), whole("ok")]);
        assert_eq!(end, Ok(()));
        let mut chunks: Vec<&[u8]> = vec![b"<13>"];
        chunks.extend(std::iter::repeat_n(&filler[..], 1000));
        chunks.push(b"\n<13>ok\n");
        let (frames, _) = decode(8, &chunks);
        assert_eq!(frames, [("<13>xxxx".into(), true), whole("<13>ok")]);
    }

    #[test]
    fn garbage_lengths_are_read_as_newline_frames() {
        let (frames, _) = decode(100, &[b"12x <13>a\n0 b\n9999999999 c\n 1 d\n"]);
        assert_eq!(
            frames,
            [
                whole("12x <13>a"),
                whole("0 b"),
                whole("9999999999 c"),
                whole(" 1 d")
            ]
        );
    }

    #[test]
    fn a_counted_frame_cut_short_is_reported() {
        assert_eq!(decode(100, &[b"5 <13>a10 abc"]).1, Err(6));
        assert_eq!(decode(100, &[b"5 <13>a123"]).1, Err(3));
        let (frames, end) = decode(100, &[b"5 <13>a<13>unterminated"]);
        assert_eq!(frames, [whole("<13>a"), whole("<13>unterminated")]);
        assert_eq!(end, Ok(()));
    }

    /// Every frame of `stream` cut into pieces at `cuts` (positions, any order), and how the
    /// stream ended.
    fn frames_of(max: usize, stream: &[u8], cuts: &[usize]) -> (Vec<Frame>, Result<(), usize>) {
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(stream.len())).collect();
        cuts.sort_unstable();
        let mut decoder = FrameDecoder::new(max);
        let mut frames = Vec::new();
        let mut start = 0;
        for end in cuts.into_iter().chain([stream.len()]) {
            decoder.extend(&stream[start..end]);
            start = end;
            while let Some(f) = decoder.next_frame() {
                frames.push(f);
            }
        }
        let end = decoder.finish().map(|last| frames.extend(last));
        (frames, end)
    }

    /// A well-formed message: octet-counted (any non-empty bytes) or newline-delimited (no newline, not
    /// starting with a digit, not empty after trimming).
    fn message() -> impl Strategy<Value = (bool, Vec<u8>)> {
        // RFC 6587's MSG-LEN starts with a non-zero digit: no empty counted frames.
        let counted = prop::collection::vec(any::<u8>(), 1..60).prop_map(|b| (true, b));
        let newline = "<[0-9]{1,3}>[ -~]{0,50}[a-z]".prop_map(|s| (false, s.into_bytes()));
        prop_oneof![counted, newline]
    }

    proptest! {
        #[test]
        fn frames_do_not_depend_on_how_the_stream_is_split(
            stream in prop::collection::vec(
                prop_oneof![any::<u8>(), Just(b'\n'), Just(b' '), b'0'..=b'9'], 0..300),
            cuts in prop::collection::vec(0usize..300, 0..8),
            max in 1usize..40,
        ) {
            let whole = frames_of(max, &stream, &[]);
            let split = frames_of(max, &stream, &cuts);
            prop_assert_eq!(&whole, &split);
            for f in &whole.0 {
                prop_assert!(f.data.len() <= max);
                prop_assert!(!f.truncated || f.data.len() == max);
            }
        }

        #[test]
        fn well_formed_messages_come_out_as_sent(
            messages in prop::collection::vec(message(), 0..12),
            cuts in prop::collection::vec(0usize..1000, 0..8),
            max in 1usize..80,
        ) {
            let mut stream = Vec::new();
            for (counted, body) in &messages {
                if *counted {
                    stream.extend_from_slice(format!("{} ", body.len()).as_bytes());
                    stream.extend_from_slice(body);
                } else {
                    stream.extend_from_slice(body);
                    stream.push(b'\n');
                }
            }
            let (frames, end) = frames_of(max, &stream, &cuts);
            prop_assert_eq!(end, Ok(()));
            // In order, cut to `max`.
            let expected: Vec<(Vec<u8>, bool)> = messages
                .iter()
                .map(|(_, body)| (body[..body.len().min(max)].to_vec(), body.len() > max))
                .collect();
            let got: Vec<(Vec<u8>, bool)> =
                frames.into_iter().map(|f| (f.data.to_vec(), f.truncated)).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
