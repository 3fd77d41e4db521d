//! Decoding a consumer group member's assignment: the consumer protocol's
//! `ConsumerProtocolAssignment` (version, then topics with their partitions, then user data),
//! as Kafka clients write it. Every count is checked against the bytes left before anything
//! is allocated, since the bytes come from the broker.

/// Topics and partitions, in the order they were encoded.
pub(crate) type Assignment = Vec<(String, Vec<i32>)>;

/// Decodes the assignment bytes of one member (empty bytes: nothing assigned yet).
///
/// # Errors
/// A description of what is malformed.
pub(crate) fn decode_assignment(bytes: &[u8]) -> Result<Assignment, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut r = Reader { bytes };
    let _version = r.i16()?;
    let topics = r.count(2 + 4)?;
    let mut out = Vec::with_capacity(topics);
    for _ in 0..topics {
        let len = usize::try_from(r.i16()?).map_err(|e| format!("topic name length: {e}"))?;
        let name = String::from_utf8_lossy(r.take(len)?).into_owned();
        let partitions = r.count(4)?;
        let mut ps = Vec::with_capacity(partitions);
        for _ in 0..partitions {
            ps.push(r.i32()?);
        }
        out.push((name, ps));
    }
    Ok(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.bytes.len() {
            return Err("truncated assignment".to_owned());
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn i16(&mut self) -> Result<i16, String> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An array count, refused when the elements (at least `min_element` bytes each)
    /// cannot fit in what is left.
    fn count(&mut self, min_element: usize) -> Result<usize, String> {
        let n = self.i32()?;
        let n = usize::try_from(n).map_err(|e| format!("count {n}: {e}"))?;
        if n.saturating_mul(min_element) > self.bytes.len() {
            return Err(format!("count {n} exceeds the bytes left"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut b = vec![0, 1];
        b.extend(i32::try_from(topics.len()).expect("few").to_be_bytes());
        for (t, ps) in topics {
            b.extend(i16::try_from(t.len()).expect("short").to_be_bytes());
            b.extend(t.as_bytes());
            b.extend(i32::try_from(ps.len()).expect("few").to_be_bytes());
            for p in *ps {
                b.extend(p.to_be_bytes());
            }
        }
        b.extend((-1i32).to_be_bytes()); // null user data
        b
    }

    #[test]
    fn an_assignment_round_trips() {
        let bytes = encode(&[("orders", &[0, 2]), ("events", &[])]);
        assert_eq!(
            decode_assignment(&bytes),
            Ok(vec![
                ("orders".to_owned(), vec![0, 2]),
                ("events".to_owned(), vec![])
            ])
        );
        assert_eq!(decode_assignment(&[]), Ok(vec![]));
    }

    #[test]
    fn hostile_counts_and_truncation_are_refused_without_allocating() {
        let mut bytes = vec![0, 1];
        bytes.extend(i32::MAX.to_be_bytes());
        assert!(decode_assignment(&bytes).is_err());
        let full = encode(&[("orders", &[0, 2])]);
        for cut in 1..full.len() - 4 {
            assert!(decode_assignment(&full[..cut]).is_err(), "cut at {cut}");
        }
    }
}
