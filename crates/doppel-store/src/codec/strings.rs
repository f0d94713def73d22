//! String columns: a dictionary of the distinct strings in first-seen order, then one
//! varint id a value (state names and modes repeat; free text is rare in sensor history).

use std::collections::HashMap;

use super::bits::{put_block, put_varint, Bytes};
use super::CodecError;

pub(crate) fn encode(v: &[&str], out: &mut Vec<u8>) {
    let mut ids: HashMap<&str, u64> = HashMap::new();
    let mut dict: Vec<&str> = Vec::new();
    let mut id_bytes = Vec::new();
    for &s in v {
        let next = dict.len() as u64;
        let id = *ids.entry(s).or_insert_with(|| {
            dict.push(s);
            next
        });
        put_varint(&mut id_bytes, id);
    }
    put_varint(out, dict.len() as u64);
    for s in &dict {
        put_block(out, s.as_bytes());
    }
    // With one distinct string every id is 0: leave them out.
    if dict.len() > 1 {
        out.extend_from_slice(&id_bytes);
    }
}

pub(crate) fn decode(buf: &[u8], n: usize) -> Result<Vec<String>, CodecError> {
    let mut b = Bytes::new(buf);
    let dict_len = b.varint_max(n as u64, "string dictionary larger than the column")? as usize;
    if (n > 0) != (dict_len > 0) {
        return Err(CodecError::new(
            "string dictionary size does not fit the column",
        ));
    }
    // Each entry has at least its length byte, so the dictionary is bounded by the input.
    if dict_len > b.remaining() {
        return Err(CodecError::new("string dictionary longer than its bytes"));
    }
    let mut dict = Vec::with_capacity(dict_len);
    for _ in 0..dict_len {
        let s = std::str::from_utf8(b.block()?)
            .map_err(|_| CodecError::new("string dictionary entry is not UTF-8"))?;
        dict.push(s);
    }
    let mut out = Vec::with_capacity(n);
    if dict_len == 1 {
        out.extend(std::iter::repeat_n(dict[0].to_string(), n));
    } else {
        if n > b.remaining() {
            return Err(CodecError::new("more string ids than the bytes can hold"));
        }
        for _ in 0..n {
            let id = b.varint()?;
            let s = usize::try_from(id)
                .ok()
                .and_then(|i| dict.get(i))
                .ok_or(CodecError::new("string id outside the dictionary"))?;
            out.push((*s).to_string());
        }
    }
    if b.remaining() != 0 {
        return Err(CodecError::new("bytes after the last string id"));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(v in proptest::collection::vec("\\PC{0,6}|on|off", 0..200)) {
            let refs: Vec<&str> = v.iter().map(String::as_str).collect();
            let mut out = Vec::new();
            encode(&refs, &mut out);
            prop_assert_eq!(decode(&out, v.len()).unwrap(), v);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), n in 0usize..300) {
            let _ = decode(&bytes, n);
        }
    }
}
