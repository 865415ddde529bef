//! Byte ranges of a data flow (RFC 9110 §14): the one `Range` a pull may ask for, and the
//! `Content-Range` of a partial answer. Sources that can seek (files) or pass a range on (HTTP sources
//! that support them) serve the part asked for; the others serve the whole, as HTTP allows.

/// One range, `bytes=first-` or `bytes=first-last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte (from 0).
    pub first: u64,
    /// The last byte, inclusive (`None`: to the end).
    pub last: Option<u64>,
}

impl ByteRange {
    /// Parses a `Range` header. Anything but a single range with a first byte (several ranges, a suffix
    /// range, another unit) is `None`: the whole is served then.
    pub fn parse(value: &str) -> Option<ByteRange> {
        let spec = value.trim().strip_prefix("bytes=")?;
        let (first, last) = spec.split_once('-')?;
        if first.is_empty() || spec.contains(',') {
            return None;
        }
        let first: u64 = first.trim().parse().ok()?;
        let last = match last.trim() {
            "" => None,
            l => Some(l.parse::<u64>().ok().filter(|l| *l >= first)?),
        };
        Some(ByteRange { first, last })
    }

    /// The `Range` header value.
    pub fn header(&self) -> String {
        match self.last {
            Some(last) => format!("bytes={}-{last}", self.first),
            None => format!("bytes={}-", self.first),
        }
    }

    /// The part of a whole of `total` bytes this range covers, or `None` if it starts past the end.
    pub fn within(&self, total: u64) -> Option<ContentRange> {
        if self.first >= total {
            return None;
        }
        let last = self.last.map_or(total - 1, |l| l.min(total - 1));
        Some(ContentRange {
            first: self.first,
            last,
            total: Some(total),
        })
    }
}

/// What a partial answer holds: `Content-Range: bytes first-last/total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    /// The first byte.
    pub first: u64,
    /// The last byte, inclusive.
    pub last: u64,
    /// The whole's length, if known (`*` otherwise).
    pub total: Option<u64>,
}

impl ContentRange {
    /// Parses a `Content-Range` header (`bytes first-last/total`).
    pub fn parse(value: &str) -> Option<ContentRange> {
        let spec = value.trim().strip_prefix("bytes ")?;
        let (span, total) = spec.split_once('/')?;
        let (first, last) = span.split_once('-')?;
        let (first, last): (u64, u64) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
        let total = match total.trim() {
            "*" => None,
            t => Some(t.parse().ok()?),
        };
        (last >= first).then_some(ContentRange { first, last, total })
    }

    /// The `Content-Range` header value.
    pub fn header(&self) -> String {
        let total = self.total.map_or_else(|| "*".to_owned(), |t| t.to_string());
        format!("bytes {}-{}/{total}", self.first, self.last)
    }

    /// How many bytes the part holds.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never: a range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_and_written_as_rfc_9110_has_them() {
        let r = |s| ByteRange::parse(s);
        assert_eq!(
            r("bytes=100-"),
            Some(ByteRange {
                first: 100,
                last: None
            })
        );
        assert_eq!(
            r("bytes=0-9"),
            Some(ByteRange {
                first: 0,
                last: Some(9)
            })
        );
        for whole in [
            "bytes=-5",
            "bytes=0-1,5-9",
            "items=0-1",
            "bytes=9-3",
            "bytes=x-",
            "",
        ] {
            assert_eq!(r(whole), None, "{whole}");
        }
        assert_eq!(r("bytes=100-").unwrap().header(), "bytes=100-");
        let part = r("bytes=10-").unwrap().within(25).unwrap();
        assert_eq!((part.header(), part.len()), ("bytes 10-24/25".into(), 15));
        assert_eq!(r("bytes=3-99").unwrap().within(10).unwrap().last, 9);
        assert_eq!(r("bytes=25-").unwrap().within(25), None);
        assert_eq!(ContentRange::parse("bytes 10-24/25"), Some(part));
        assert_eq!(ContentRange::parse("bytes 0-4/*").unwrap().total, None);
        assert_eq!(ContentRange::parse("bytes 5-4/9"), None);
    }
}
