//! The federated catalog's term index: for each indexed term and bucket, which of the bucket's
//! datasets have the term, per scored column (a row of `fed_terms`). A dataset's place in its bucket is
//! the low bits of its id, so a search reads a few rows per bucket instead of a list entry per dataset,
//! and computes its hits, their scores, the total and the facets from them exactly (see ADR 0011).
//!
//! A row's `docs` holds the four columns' sets one after the other, each as a tag byte and its body:
//! `0` empty; `1` the same set as the column before; `2` a list (a varint count, then the positions as
//! varint gaps); `3` a bitmap (a varint byte count, then the bits, lowest position first), whichever of
//! the last two is shorter.

use caap_identity::multibase::{varint_decode, varint_encode};

use super::SCORED_COLUMNS;

/// The scored columns (title, keywords/themes/model, description, city and id).
pub(super) const COLUMNS: usize = SCORED_COLUMNS.len();

/// Positions in a bucket, as bits (as many words as the highest position needs).
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub(super) struct Bits(Vec<u64>);

impl Bits {
    fn insert(&mut self, pos: usize) {
        let word = pos / 64;
        if word >= self.0.len() {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (pos % 64);
    }

    /// Adds the positions of a bitmap (lowest position first).
    fn or_bytes(&mut self, bytes: &[u8]) {
        let words = bytes.len().div_ceil(8);
        if words > self.0.len() {
            self.0.resize(words, 0);
        }
        for (w, chunk) in self.0.iter_mut().zip(bytes.chunks(8)) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            *w |= u64::from_le_bytes(word);
        }
    }

    pub(super) fn get(&self, pos: usize) -> bool {
        self.0
            .get(pos / 64)
            .is_some_and(|w| w & (1 << (pos % 64)) != 0)
    }

    pub(super) fn and(&mut self, other: &Bits) {
        self.0.truncate(other.0.len());
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a &= b;
        }
    }

    /// The positions, ascending.
    pub(super) fn positions(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                (w != 0).then(|| {
                    let bit = w.trailing_zeros() as usize;
                    w &= w - 1;
                    i * 64 + bit
                })
            })
        })
    }
}

/// Reads the LEB128 varint at `at` (the identity crate's, as multicodec uses) and moves past it.
fn take_varint(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let (v, rest) = bytes
        .get(*at..)
        .and_then(varint_decode)
        .ok_or("a number runs past the end or is too long")?;
    *at = bytes.len() - rest.len();
    Ok(v)
}

/// A term's positions in one bucket, per column (each ascending, without repeats).
pub(super) fn encode(columns: &[Vec<u32>; COLUMNS]) -> Vec<u8> {
    let mut out = Vec::new();
    for (c, positions) in columns.iter().enumerate() {
        if positions.is_empty() {
            out.push(0);
            continue;
        }
        if c > 0 && columns[c - 1] == *positions {
            out.push(1);
            continue;
        }
        let mut list = Vec::new();
        varint_encode(positions.len() as u64, &mut list);
        let mut prev = 0;
        for &p in positions {
            varint_encode(u64::from(p - prev), &mut list);
            prev = p;
        }
        let last = positions.last().copied().unwrap_or_default() as usize;
        let bitmap_len = last / 8 + 1;
        if list.len() <= bitmap_len + 3 {
            out.push(2);
            out.extend(list);
        } else {
            out.push(3);
            varint_encode(bitmap_len as u64, &mut out);
            let start = out.len();
            out.resize(start + bitmap_len, 0);
            for &p in positions {
                out[start + p as usize / 8] |= 1 << (p % 8);
            }
        }
    }
    out
}

/// Adds the sets [`encode`] wrote (positions below `limit`) to `any` (every column) and, with
/// `columns`, to each column's.
pub(super) fn decode_into(
    bytes: &[u8],
    limit: usize,
    any: &mut Bits,
    mut columns: Option<&mut [Bits; COLUMNS]>,
) -> Result<(), String> {
    let mut at = 0;
    // Where the previous column's body is (a repeat reads it again).
    let mut previous: Option<(u8, usize)> = None;
    for c in 0..COLUMNS {
        let tag = *bytes.get(at).ok_or("ends before its last column")?;
        at += 1;
        let (tag, mut body) = match tag {
            0 => {
                previous = None;
                continue;
            }
            1 => previous.ok_or("a column repeats nothing")?,
            2 | 3 => (tag, at),
            other => return Err(format!("unknown column tag {other}")),
        };
        let mut add = |p: usize| -> Result<(), String> {
            if p >= limit {
                return Err(format!("position {p} outside a bucket"));
            }
            any.insert(p);
            if let Some(columns) = columns.as_deref_mut() {
                columns[c].insert(p);
            }
            Ok(())
        };
        let start = body;
        if tag == 2 {
            let count = take_varint(bytes, &mut body)?;
            let mut pos = 0u64;
            for _ in 0..count {
                pos = pos.saturating_add(take_varint(bytes, &mut body)?);
                add(usize::try_from(pos).unwrap_or(usize::MAX))?;
            }
        } else {
            let len = usize::try_from(take_varint(bytes, &mut body)?).unwrap_or(usize::MAX);
            let bits = body
                .checked_add(len)
                .and_then(|end| bytes.get(body..end))
                .ok_or("a bitmap runs past the end")?;
            body += len;
            if let Some(p) = bits
                .iter()
                .rposition(|b| *b != 0)
                .map(|i| i * 8 + 7 - bits[i].leading_zeros() as usize)
                && p >= limit
            {
                return Err(format!("position {p} outside a bucket"));
            }
            // Eight bytes at a time into the words.
            any.or_bytes(bits);
            if let Some(columns) = columns.as_deref_mut() {
                columns[c].or_bytes(bits);
            }
        }
        if previous.is_none_or(|(_, p)| p != start) {
            at = body;
        }
        previous = Some((tag, start));
    }
    if at != bytes.len() {
        return Err("bytes after the last column".into());
    }
    Ok(())
}

/// Bytes from hexadecimal (either case), as SQLite's `hex()` and PostgreSQL's `encode(…, 'hex')` give
/// them, into `out` (emptied first).
pub(super) fn unhex_into(text: &str, out: &mut Vec<u8>) -> Result<(), String> {
    fn nibble(c: u8) -> Result<u8, String> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(format!("`{}` is not hexadecimal", c as char)),
        }
    }
    let t = text.as_bytes();
    if !t.len().is_multiple_of(2) {
        return Err("odd hexadecimal length".into());
    }
    out.clear();
    for p in t.chunks_exact(2) {
        out.push(nibble(p[0])? << 4 | nibble(p[1])?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(columns: [Vec<u32>; COLUMNS], n: usize) {
        let bytes = encode(&columns);
        let (mut any, mut sets) = (Bits::default(), <[Bits; COLUMNS]>::default());
        decode_into(&bytes, n, &mut any, Some(&mut sets)).unwrap();
        for (set, want) in sets.iter().zip(&columns) {
            let got: Vec<u32> = set.positions().map(|p| p as u32).collect();
            assert_eq!(&got, want);
        }
        let mut all: Vec<u32> = columns.concat();
        all.sort_unstable();
        all.dedup();
        assert_eq!(any.positions().map(|p| p as u32).collect::<Vec<_>>(), all);
    }

    #[test]
    fn sets_round_trip_as_lists_bitmaps_repeats_and_empties() {
        let dense: Vec<u32> = (0..200).filter(|p| p % 3 != 0).collect();
        round_trip([vec![], vec![5], vec![5], dense.clone()], 300);
        round_trip([dense.clone(), dense, vec![], vec![0, 299]], 300);
        round_trip([vec![1_048_575], vec![], vec![], vec![]], 1 << 20);
        round_trip([vec![], vec![], vec![], vec![]], 1);
    }

    #[test]
    fn a_list_or_a_bitmap_whichever_is_shorter() {
        let dense: Vec<u32> = (0..1000).collect();
        // 1000 positions: 125 bytes of bitmap instead of 1000+ of list.
        assert!(encode(&[dense, vec![], vec![], vec![]]).len() < 140);
        let sparse = vec![3, 900_000];
        assert!(encode(&[sparse, vec![], vec![], vec![]]).len() < 12);
    }

    #[test]
    fn damaged_rows_are_refused_not_misread() {
        let decode = |bytes: &[u8], n: usize| decode_into(bytes, n, &mut Bits::default(), None);
        let bytes = encode(&[vec![1, 7], vec![], vec![], vec![]]);
        assert!(decode(&bytes, 4).is_err(), "7 is outside a bucket of 4");
        assert!(decode(&bytes, 8).is_ok());
        let dense = encode(&[(0..100).collect(), vec![], vec![], vec![]]);
        assert_eq!(dense[0], 3, "a bitmap");
        assert!(decode(&dense, 99).is_err() && decode(&dense, 100).is_ok());
        assert!(decode(&bytes[..bytes.len() - 1], 10).is_err());
        assert!(decode(&[9, 0, 0, 0], 10).is_err());
        assert!(
            decode(&[1, 0, 0, 0], 10).is_err(),
            "the first column repeats nothing"
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer, 10).is_err());
        let mut out = Vec::new();
        assert!(unhex_into("0g", &mut out).is_err() && unhex_into("abc", &mut out).is_err());
        unhex_into("0aFf", &mut out).unwrap();
        assert_eq!(out, vec![10, 255]);
    }

    #[test]
    fn and_keeps_the_common_positions() {
        let (mut a, mut b) = (Bits::default(), Bits::default());
        for p in [1, 64, 130, 200] {
            a.insert(p);
        }
        for p in [64, 200, 300] {
            b.insert(p);
        }
        let mut both = a.clone();
        both.and(&b);
        assert_eq!(both.positions().collect::<Vec<_>>(), vec![64, 200]);
        b.and(&a);
        assert_eq!(b, both);
        assert!(a.get(130) && !a.get(131));
    }
}
