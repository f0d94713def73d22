//! Bit-level writer and reader for the Gorilla-style codecs, plus LEB128 varints and zigzag.
//!
//! The reader is the trust boundary for stored bytes: every read is bounds-checked and
//! returns [`CodecError`] instead of panicking, and nothing here allocates based on what it
//! reads.

use super::CodecError;

/// Appends bits most-significant first into a byte vector.
#[derive(Debug, Default)]
pub(crate) struct BitWriter {
    out: Vec<u8>,
    /// Bits not yet flushed, left-aligned in the low `n` bits of `acc`.
    acc: u64,
    n: u32,
}

impl BitWriter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Writes the low `bits` bits of `value` (0..=64).
    pub(crate) fn write(&mut self, value: u64, bits: u32) {
        debug_assert!(bits <= 64);
        if bits == 0 {
            return;
        }
        let value = if bits == 64 {
            value
        } else {
            value & ((1u64 << bits) - 1)
        };
        // Split writes so `acc` never holds more than 64 bits.
        if self.n + bits > 64 {
            let first = 64 - self.n;
            self.write(value >> (bits - first), first);
            self.write(value, bits - first);
            return;
        }
        self.acc = if bits == 64 {
            value
        } else {
            (self.acc << bits) | value
        };
        self.n += bits;
        while self.n >= 8 {
            self.n -= 8;
            self.out.push((self.acc >> self.n) as u8);
        }
    }

    pub(crate) fn bit(&mut self, b: bool) {
        self.write(u64::from(b), 1);
    }

    /// The bytes written, the last one zero-padded.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push((self.acc << (8 - self.n)) as u8);
        }
        self.out
    }
}

/// Reads bits most-significant first from a byte slice.
#[derive(Debug)]
pub(crate) struct BitReader<'a> {
    buf: &'a [u8],
    /// Position in bits.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        BitReader { buf, pos: 0 }
    }

    /// Reads `bits` bits (0..=64) as the low bits of a u64.
    pub(crate) fn read(&mut self, bits: u32) -> Result<u64, CodecError> {
        if bits == 0 {
            return Ok(0);
        }
        let end = self.pos + bits as usize;
        if end > self.buf.len() * 8 || bits > 64 {
            return Err(CodecError::new("bit stream ends early"));
        }
        let mut v: u64 = 0;
        let mut left = bits;
        while left > 0 {
            let byte = self.buf[self.pos / 8];
            let offset = (self.pos % 8) as u32;
            let avail = 8 - offset;
            let take = avail.min(left);
            let chunk = (u64::from(byte) >> (avail - take)) & ((1u64 << take) - 1);
            v = if take == 64 {
                chunk
            } else {
                (v << take) | chunk
            };
            self.pos += take as usize;
            left -= take;
        }
        Ok(v)
    }

    pub(crate) fn bit(&mut self) -> Result<bool, CodecError> {
        Ok(self.read(1)? == 1)
    }

    /// Counts leading one bits, stopping after `max` of them (the prefix codes of the
    /// Gorilla buckets).
    pub(crate) fn ones(&mut self, max: u32) -> Result<u32, CodecError> {
        let mut n = 0;
        while n < max && self.bit()? {
            n += 1;
        }
        Ok(n)
    }
}

/// Sign-extends the low `bits` bits of `v`.
pub(crate) fn sign_extend(v: u64, bits: u32) -> i64 {
    if bits == 0 || bits >= 64 {
        return v as i64;
    }
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A bounds-checked byte cursor over stored bytes.
#[derive(Debug)]
pub(crate) struct Bytes<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Bytes { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if n > self.remaining() {
            return Err(CodecError::new("bytes end early"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    pub(crate) fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, CodecError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, CodecError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            let part = u64::from(b & 0x7f);
            if shift == 63 && part > 1 {
                return Err(CodecError::new("varint overflows 64 bits"));
            }
            v |= part << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::new("varint longer than 10 bytes"))
    }

    /// A varint that must not exceed `max` (a count or length the caller will act on).
    pub(crate) fn varint_max(&mut self, max: u64, what: &'static str) -> Result<u64, CodecError> {
        let v = self.varint()?;
        if v > max {
            return Err(CodecError::new(what));
        }
        Ok(v)
    }

    /// A length-prefixed byte slice.
    pub(crate) fn block(&mut self) -> Result<&'a [u8], CodecError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| CodecError::new("block length too large"))?;
        self.take(len)
    }
}

/// Appends `bytes` with a varint length prefix.
pub(crate) fn put_block(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bits_round_trip(items in proptest::collection::vec((any::<u64>(), 0u32..=64), 0..100)) {
            let mut w = BitWriter::new();
            for &(v, b) in &items {
                w.write(v, b);
            }
            let bytes = w.finish();
            let mut r = BitReader::new(&bytes);
            for &(v, b) in &items {
                let want = if b == 64 { v } else if b == 0 { 0 } else { v & ((1 << b) - 1) };
                prop_assert_eq!(r.read(b).unwrap(), want);
            }
        }

        #[test]
        fn varints_and_zigzag_round_trip(v in any::<i64>()) {
            let mut out = Vec::new();
            put_varint(&mut out, zigzag(v));
            let mut b = Bytes::new(&out);
            prop_assert_eq!(unzigzag(b.varint().unwrap()), v);
            prop_assert_eq!(b.remaining(), 0);
        }
    }

    #[test]
    fn overlong_varints_are_errors() {
        assert!(Bytes::new(&[0xff; 11]).varint().is_err());
        assert!(
            Bytes::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
                .varint()
                .is_err()
        );
        assert_eq!(
            Bytes::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
                .varint()
                .unwrap(),
            u64::MAX
        );
        assert_eq!(sign_extend(0x7f, 7), -1);
        assert_eq!(sign_extend(0x3f, 7), 63);
    }
}
