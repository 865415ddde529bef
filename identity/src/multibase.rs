//! The few multiformats caap needs: base58btc (multibase `z`), unsigned varints (multicodec
//! prefixes) and multibase base64url (`u`, used by Bitstring Status Lists).

const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Encodes bytes in base58 (Bitcoin alphabet).
pub fn base58_encode(input: &[u8]) -> String {
    let zeros = input.iter().take_while(|b| **b == 0).count();
    // Big-endian base-256 to base-58, digits little-endian.
    let mut digits: Vec<u8> = Vec::with_capacity(input.len() * 138 / 100 + 1);
    for &byte in &input[zeros..] {
        let mut carry = u32::from(byte);
        for d in digits.iter_mut() {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut out = String::with_capacity(zeros + digits.len());
    out.extend(std::iter::repeat_n('1', zeros));
    out.extend(
        digits
            .iter()
            .rev()
            .map(|d| char::from(ALPHABET[usize::from(*d)])),
    );
    out
}

/// Decodes base58 (Bitcoin alphabet); `None` on a character outside it.
pub fn base58_decode(input: &str) -> Option<Vec<u8>> {
    let zeros = input.bytes().take_while(|b| *b == b'1').count();
    let mut bytes: Vec<u8> = Vec::with_capacity(input.len());
    for c in input.bytes().skip(zeros) {
        let mut carry = ALPHABET.iter().position(|a| *a == c)? as u32;
        for b in bytes.iter_mut() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let mut out = vec![0u8; zeros];
    out.extend(bytes.iter().rev());
    Some(out)
}

/// Appends `value` as an unsigned LEB128 varint.
pub fn varint_encode(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads an unsigned LEB128 varint (at most 9 bytes); returns it and the rest.
pub fn varint_decode(input: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, byte) in input.iter().enumerate().take(9) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, &input[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base58_matches_known_values() {
        assert_eq!(base58_encode(b"hello world"), "StV1DL6CwTryKyV");
        assert_eq!(base58_encode(&[0, 0, 1]), "112");
        assert_eq!(base58_encode(&[]), "");
        assert_eq!(base58_decode("StV1DL6CwTryKyV").unwrap(), b"hello world");
        assert_eq!(base58_decode("112").unwrap(), vec![0, 0, 1]);
        assert!(base58_decode("0OIl").is_none());
        for n in 0..300u32 {
            let bytes: Vec<u8> = n.to_be_bytes().to_vec();
            assert_eq!(base58_decode(&base58_encode(&bytes)).unwrap(), bytes);
        }
    }

    #[test]
    fn varints_round_trip() {
        for v in [
            0u64,
            1,
            0x7f,
            0x80,
            0xed,
            0x1200,
            0x1201,
            u64::from(u32::MAX),
        ] {
            let mut out = Vec::new();
            varint_encode(v, &mut out);
            out.push(42);
            assert_eq!(varint_decode(&out), Some((v, &[42u8][..])));
        }
        let mut out = Vec::new();
        varint_encode(0x1200, &mut out);
        assert_eq!(out, vec![0x80, 0x24]);
        assert!(varint_decode(&[0x80]).is_none());
    }
}
