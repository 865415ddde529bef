//! The federated catalog's term index: for each indexed term and bucket, which of the bucket's
//! datasets have the term, per scored column (a row of `fed_terms`). A dataset's place in its bucket is
//! the low bits of its id, so a search reads a few rows per bucket instead of a list entry per dataset,
//! and computes its hits, their scores, the total and the facets from them exactly (see ADR 0011).
//!
//! A row's `docs` holds the four columns' sets one after the other, each as a tag byte and its body:
//! `0` empty; `1` the same set as the column before; `2` a list (a varint count, then the positions as
//! varint gaps); `3` a bitmap (a varint byte count, then the bits, lowest position first), whichever of
//! the last two is shorter.

use super::SCORED_COLUMNS;

/// The scored columns (title, keywords/themes/model, description, city and id).
pub(super) const COLUMNS: usize = SCORED_COLUMNS.len();

/// Positions in a bucket, as bits.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub(super) struct Bits(Vec<u64>);

impl Bits {
    /// No position of a bucket of `n`.
    pub(super) fn empty(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)])
    }

    /// Every position of a bucket of `n`.
    pub(super) fn full(n: usize) -> Self {
        let mut b = Bits(vec![u64::MAX; n.div_ceil(64)]);
        if !n.is_multiple_of(64)
            && let Some(last) = b.0.last_mut()
        {
            *last = (1u64 << (n % 64)) - 1;
        }
        b
    }

    fn set(&mut self, pos: usize) -> bool {
        match self.0.get_mut(pos / 64) {
            Some(w) => {
                *w |= 1 << (pos % 64);
                true
            }
            None => false,
        }
    }

    pub(super) fn get(&self, pos: usize) -> bool {
        self.0
            .get(pos / 64)
            .is_some_and(|w| w & (1 << (pos % 64)) != 0)
    }

    pub(super) fn or(&mut self, other: &Bits) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }

    pub(super) fn and(&mut self, other: &Bits) {
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

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at).ok_or("a number runs past the end")?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err("a number is too long".into())
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
        put_varint(&mut list, positions.len() as u64);
        let mut prev = 0;
        for &p in positions {
            put_varint(&mut list, u64::from(p - prev));
            prev = p;
        }
        let last = positions.last().copied().unwrap_or_default() as usize;
        let bitmap_len = last / 8 + 1;
        if list.len() <= bitmap_len + 3 {
            out.push(2);
            out.extend(list);
        } else {
            out.push(3);
            put_varint(&mut out, bitmap_len as u64);
            let start = out.len();
            out.resize(start + bitmap_len, 0);
            for &p in positions {
                out[start + p as usize / 8] |= 1 << (p % 8);
            }
        }
    }
    out
}

/// The sets [`encode`] wrote, for a bucket of `n` datasets.
pub(super) fn decode(bytes: &[u8], n: usize) -> Result<[Bits; COLUMNS], String> {
    let mut out: [Bits; COLUMNS] = Default::default();
    let mut at = 0;
    for c in 0..COLUMNS {
        let tag = *bytes.get(at).ok_or("ends before its last column")?;
        at += 1;
        out[c] = match tag {
            0 => Bits::empty(n),
            1 if c > 0 => out[c - 1].clone(),
            2 => {
                let mut set = Bits::empty(n);
                let count = take_varint(bytes, &mut at)?;
                let mut pos = 0u64;
                for _ in 0..count {
                    pos += take_varint(bytes, &mut at)?;
                    if !usize::try_from(pos).is_ok_and(|p| p < n && set.set(p)) {
                        return Err(format!("position {pos} outside a bucket of {n}"));
                    }
                }
                set
            }
            3 => {
                let len = usize::try_from(take_varint(bytes, &mut at)?).unwrap_or(usize::MAX);
                let body = at
                    .checked_add(len)
                    .and_then(|end| bytes.get(at..end))
                    .ok_or("a bitmap runs past the end")?;
                at += len;
                let mut set = Bits::empty(n);
                for (i, byte) in body.iter().enumerate() {
                    for bit in 0..8 {
                        if byte & (1 << bit) != 0 {
                            let p = i * 8 + bit;
                            if p >= n || !set.set(p) {
                                return Err(format!("position {p} outside a bucket of {n}"));
                            }
                        }
                    }
                }
                set
            }
            other => return Err(format!("unknown column tag {other}")),
        };
    }
    if at != bytes.len() {
        return Err("bytes after the last column".into());
    }
    Ok(out)
}

/// Bytes from hexadecimal (either case), as SQLite's `hex()` and PostgreSQL's `encode(…, 'hex')` give them.
pub(super) fn unhex(text: &str) -> Result<Vec<u8>, String> {
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
    t.chunks(2)
        .map(|p| Ok(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(columns: [Vec<u32>; COLUMNS], n: usize) {
        let bytes = encode(&columns);
        let sets = decode(&bytes, n).unwrap();
        for (set, want) in sets.iter().zip(&columns) {
            let got: Vec<u32> = set.positions().map(|p| p as u32).collect();
            assert_eq!(&got, want);
        }
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
        let bytes = encode(&[vec![1, 7], vec![], vec![], vec![]]);
        assert!(decode(&bytes, 4).is_err(), "7 is outside a bucket of 4");
        assert!(decode(&bytes[..bytes.len() - 1], 10).is_err());
        assert!(decode(&[9, 0, 0, 0], 10).is_err());
        assert!(
            decode(&[1, 0, 0, 0], 10).is_err(),
            "the first column repeats nothing"
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer, 10).is_err());
        assert!(unhex("0g").is_err() && unhex("abc").is_err());
        assert_eq!(unhex("0aFf").unwrap(), vec![10, 255]);
    }

    #[test]
    fn full_bits_stop_at_the_bucket_size() {
        let b = Bits::full(70);
        assert_eq!(b.positions().count(), 70);
        assert!(b.get(69) && !b.get(70));
        let mut e = Bits::empty(70);
        assert_eq!(e.positions().count(), 0);
        e.or(&b);
        e.and(&Bits::empty(70));
        assert_eq!(e.positions().count(), 0);
    }
}
