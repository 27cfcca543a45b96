//! Block-parallel gzip (the technique of pigz): the input is cut into blocks that are deflated
//! on several threads, each block primed with the last 32 KiB of the one before it and ended
//! with a sync flush, then concatenated into one deflate stream under one gzip header. The
//! object is a single ordinary gzip member, as small as a serial one (within a few bytes per
//! block), and readable by any gzip reader.
//!
//! The bytes depend only on the input, the level and [`BLOCK_SIZE`], never on the number of
//! threads, so a chunk encodes to the same object however many cores compressed it.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, mpsc};

use flate2::{Compress, Compression, FlushCompress};

/// Input bytes per independently compressed block.
pub(crate) const BLOCK_SIZE: usize = 1 << 20;
/// The deflate window: how much of the previous block primes the next.
const WINDOW: usize = 32 * 1024;
/// ID1 ID2, CM = deflate, no flags, MTIME = 0 (deterministic), XFL = 0, OS = 255 (unknown).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// An empty final block (fixed Huffman, end-of-block only): closes a stream of sync-flushed
/// blocks, none of which is marked final.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// Reads `input` to its end and writes it gzip-compressed at `level` (1..=9) to `output`,
/// deflating on `threads` threads (1 = on the calling thread). Returns the bytes read.
///
/// Memory: `threads + 1` blocks of input and their output are in flight, in buffers that are
/// reused from block to block.
pub(crate) fn encode<R: Read, W: Write>(
    level: u32,
    threads: usize,
    mut input: R,
    output: &mut W,
) -> io::Result<u64> {
    output.write_all(&HEADER)?;
    let mut crc = crc32fast::Hasher::new();
    let total = if threads <= 1 {
        serial(level, &mut input, output, &mut crc)?
    } else {
        parallel(level, threads, &mut input, output, &mut crc)?
    };
    output.write_all(&FINAL_BLOCK)?;
    output.write_all(&crc.finalize().to_le_bytes())?;
    // ISIZE is the input length modulo 2^32 (RFC 1952).
    output.write_all(&(total as u32).to_le_bytes())?;
    Ok(total)
}

fn serial<R: Read, W: Write>(
    level: u32,
    input: &mut R,
    output: &mut W,
    crc: &mut crc32fast::Hasher,
) -> io::Result<u64> {
    let mut block = Block::default();
    let mut total = 0u64;
    loop {
        read_block(input, &mut block.data)?;
        if block.data.is_empty() {
            return Ok(total);
        }
        deflate(level, &mut block)?;
        output.write_all(&block.out)?;
        crc.combine(&block.crc);
        total += block.data.len() as u64;
        set_window(&mut block.dict, &block.data);
    }
}

/// One block's buffers: its input, the dictionary (the previous block's last 32 KiB), the
/// deflated bytes and the CRC-32 of the input. Reused for block after block.
#[derive(Default)]
struct Block {
    index: u64,
    data: Vec<u8>,
    dict: Vec<u8>,
    out: Vec<u8>,
    crc: crc32fast::Hasher,
}

/// Raw deflate of `block.data` into `block.out` at `level`, primed with `block.dict`, ending in
/// a sync flush (byte-aligned, not final); sets `block.crc`.
///
/// A fresh deflate state per block, not a reset one: zlib-rs's reset leaves state behind that
/// changes the output, and an object's bytes must not depend on which thread compressed which
/// block.
fn deflate(level: u32, block: &mut Block) -> io::Result<()> {
    let mut compress = Compress::new(Compression::new(level), false);
    if !block.dict.is_empty() {
        compress
            .set_dictionary(&block.dict)
            .map_err(io::Error::other)?;
    }
    let data = &block.data;
    let out = &mut block.out;
    out.clear();
    out.reserve(data.len() / 3 + 1024);
    loop {
        let consumed = compress.total_in() as usize;
        compress
            .compress_vec(&data[consumed..], out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        // The flush is complete once all input is taken and the output was not filled.
        if compress.total_in() as usize == data.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity().max(4096));
    }
    block.crc = crc32fast::Hasher::new();
    block.crc.update(data);
    Ok(())
}

fn parallel<R: Read, W: Write>(
    level: u32,
    threads: usize,
    input: &mut R,
    output: &mut W,
    crc: &mut crc32fast::Hasher,
) -> io::Result<u64> {
    std::thread::scope(|scope| {
        let (job_tx, job_rx) = mpsc::sync_channel::<Block>(threads);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = mpsc::channel::<(Block, io::Result<()>)>();
        for _ in 0..threads {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            scope.spawn(move || {
                loop {
                    // The lock is held only while waiting for the next job.
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(mut block) = job else { return };
                    let result = deflate(level, &mut block);
                    if done_tx.send((block, result)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);

        // One block waiting per thread keeps every thread busy; more would only hold memory.
        let max_in_flight = threads as u64 + 1;
        let (mut next_index, mut next_write, mut total) = (0u64, 0u64, 0u64);
        let mut pending: BTreeMap<u64, Block> = BTreeMap::new();
        let mut free: Vec<Block> = Vec::new();
        let mut window = Vec::new();
        let mut eof = false;
        loop {
            while !eof && next_index - next_write < max_in_flight {
                let mut block = free.pop().unwrap_or_default();
                read_block(input, &mut block.data)?;
                if block.data.is_empty() {
                    eof = true;
                    break;
                }
                block.index = next_index;
                block.dict.clear();
                block.dict.extend_from_slice(&window);
                set_window(&mut window, &block.data);
                job_tx
                    .send(block)
                    .map_err(|_| io::Error::other("a compression thread stopped"))?;
                next_index += 1;
            }
            if next_write == next_index {
                return Ok(total);
            }
            let (block, result) = done_rx
                .recv()
                .map_err(|_| io::Error::other("a compression thread stopped"))?;
            result?;
            pending.insert(block.index, block);
            while let Some(block) = pending.remove(&next_write) {
                output.write_all(&block.out)?;
                crc.combine(&block.crc);
                total += block.data.len() as u64;
                next_write += 1;
                free.push(block);
            }
        }
        // Returning drops `job_tx`: idle threads see the channel closed and end.
    })
}

/// Fills `block` (cleared first) with up to [`BLOCK_SIZE`] bytes; empty at the end of input.
fn read_block<R: Read>(input: &mut R, block: &mut Vec<u8>) -> io::Result<()> {
    block.clear();
    block.reserve(BLOCK_SIZE);
    let mut limited = input.take(BLOCK_SIZE as u64);
    loop {
        match limited.read_to_end(block) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Keeps the last [`WINDOW`] bytes of `block` as the next block's dictionary.
fn set_window(dict: &mut Vec<u8>, block: &[u8]) {
    dict.clear();
    dict.extend_from_slice(&block[block.len().saturating_sub(WINDOW)..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut decoder = flate2::read::GzDecoder::new(bytes);
        let mut out = Vec::new();
        decoder.read_to_end(&mut out).unwrap();
        // A single member: nothing follows it.
        assert!(decoder.into_inner().is_empty());
        out
    }

    fn log_lines(bytes: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes + 200);
        let mut i = 0u64;
        while out.len() < bytes {
            out.extend_from_slice(
                format!(
                    "{{\"message\":\"https 2024-05-01T12:{:02}:{:02}.{:06}Z app/web 10.0.{}.{}:{} GET /items/{} 200\"}}\n",
                    i / 60 % 60,
                    i % 60,
                    i * 7919 % 1_000_000,
                    i % 256,
                    i * 13 % 256,
                    1024 + i % 50000,
                    i * 31
                )
                .as_bytes(),
            );
            i += 1;
        }
        out
    }

    #[test]
    fn one_member_that_gunzips_to_the_input_whatever_the_threads() {
        let input = log_lines(3 * BLOCK_SIZE + 12345);
        let mut objects = Vec::new();
        for threads in [1, 2, 3, 8] {
            let mut object = Vec::new();
            let n = encode(6, threads, &input[..], &mut object).unwrap();
            assert_eq!(n, input.len() as u64);
            assert_eq!(gunzip(&object), input);
            objects.push(object);
        }
        assert!(objects.windows(2).all(|w| w[0] == w[1]), "same bytes");
    }

    #[test]
    fn as_small_as_serial_gzip() {
        let input = log_lines(4 * BLOCK_SIZE);
        let mut ours = Vec::new();
        encode(6, 2, &input[..], &mut ours).unwrap();
        let mut serial = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        serial.write_all(&input).unwrap();
        let serial = serial.finish().unwrap();
        let overhead = ours.len() as f64 / serial.len() as f64 - 1.0;
        assert!(overhead < 0.005, "{} vs {} bytes", ours.len(), serial.len());
    }

    #[test]
    fn empty_input_is_an_empty_gzip() {
        let mut object = Vec::new();
        assert_eq!(encode(6, 2, &b""[..], &mut object).unwrap(), 0);
        assert!(gunzip(&object).is_empty());
    }

    #[test]
    fn read_errors_are_returned() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("disk gone"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(b'x');
                self.0 -= n;
                Ok(n)
            }
        }
        for threads in [1, 2] {
            let err = encode(6, threads, Failing(3 * BLOCK_SIZE), &mut Vec::new()).unwrap_err();
            assert_eq!(err.to_string(), "disk gone");
        }
    }

    /// `len` pseudo-random bytes over an alphabet of `alphabet` symbols (small alphabets
    /// compress well, large ones barely), from `seed`.
    fn bytes(len: usize, seed: u64, alphabet: u8) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b' ' + (state % u64::from(alphabet)) as u8
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn round_trips(
            len in prop_oneof![0usize..300, 0usize..(2 * BLOCK_SIZE + 100)],
            seed in any::<u64>(),
            alphabet in 1u8..=200,
            threads in 1usize..4,
            level in 1u32..10,
        ) {
            let input = bytes(len, seed, alphabet);
            let mut object = Vec::new();
            encode(level, threads, &input[..], &mut object).unwrap();
            prop_assert_eq!(gunzip(&object), input);
        }
    }
}
