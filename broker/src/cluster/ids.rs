//! Kafka's ids as text: cluster ids and topic ids are UUIDs written the way Kafka writes them.

/// A new cluster id from `random`: as Kafka's `Uuid.randomUuid()`, never the nil id, and
/// never one whose text starts with '-', which command-line tools would take for a flag.
pub(crate) fn random_cluster_id(random: &mut impl FnMut() -> uuid::Uuid) -> String {
    // A v4 id starts with '-' with probability 1/64, so this ends after a few draws.
    loop {
        let uuid = random();
        let text = encode_uuid(&uuid);
        if !uuid.is_nil() && !text.starts_with('-') {
            break text;
        }
    }
}

/// A new random cluster id.
pub(crate) fn new_cluster_id() -> String {
    random_cluster_id(&mut uuid::Uuid::new_v4)
}

/// Kafka's text form of a UUID (`Uuid.toString()`): the 16 bytes, big-endian, in URL-safe
/// base64 without padding. Sixteen bytes are five 3-byte groups and one byte left over: 22
/// characters.
pub(crate) fn encode_uuid(uuid: &uuid::Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid.as_bytes();
    let mut out = String::with_capacity(22);
    for group in bytes.chunks(3) {
        let bits = group
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        // A full group gives 4 characters; the last, one-byte group gives 2.
        let chars = group.len() + 1;
        for k in 0..chars {
            out.push(char::from(ALPHABET[(bits >> (18 - 6 * k) & 63) as usize]));
        }
    }
    out
}
