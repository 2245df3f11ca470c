//! Properties of the decoder over generated input: whatever the bytes and however reads split
//! them, it never panics, never holds more than the limit, and gives one answer.

use proptest::prelude::*;

use super::tests::client_with;
use super::*;

const LIMIT: usize = 300;

/// Feeds `bytes` cut at `cuts` (positions, in any order); the messages, then the error if any.
fn feed_cut(bytes: &[u8], cuts: &[usize]) -> (Vec<Incoming>, Option<FrameError>) {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.push(bytes.len());
    cuts.sort_unstable();
    let mut decoder = Decoder::new(LIMIT);
    let mut out = Vec::new();
    let mut from = 0;
    for cut in cuts {
        let mut piece = &bytes[from..cut];
        from = cut;
        loop {
            let (used, result) = decoder.decode(piece);
            assert!(used <= piece.len());
            assert!(decoder.held() <= LIMIT + MAX_CONTROL, "{}", decoder.held());
            piece = &piece[used..];
            match result {
                Ok(Some(message)) => out.push(message),
                Ok(None) => {
                    assert!(piece.is_empty(), "more needed only when out of input");
                    break;
                }
                Err(e) => {
                    assert_eq!(decoder.decode(piece), (0, Err(e)), "the error is final");
                    return (out, Some(e));
                }
            }
        }
    }
    (out, None)
}

/// One frame with arbitrary header fields, or raw bytes: mostly well-formed enough to get
/// past the first checks, so the later states are reached too.
fn segment() -> impl Strategy<Value = Vec<u8>> {
    let frame = (
        any::<bool>(),
        prop_oneof![4 => 0u8..3, 3 => 8u8..11, 1 => 0u8..16],
        prop_oneof![6 => Just(0u8), 1 => 0u8..8],
        prop_oneof![
            4 => proptest::collection::vec(any::<u8>(), 0..40),
            4 => "[a-zé你]{0,60}".prop_map(String::into_bytes),
            1 => proptest::collection::vec(any::<u8>(), 100..400),
        ],
        any::<[u8; 4]>(),
    )
        .prop_map(|(fin, opcode, rsv, payload, mask)| {
            let mut bytes = client_with(fin, opcode, &payload, mask);
            bytes[0] |= rsv << 4;
            bytes
        });
    prop_oneof![8 => frame, 1 => proptest::collection::vec(any::<u8>(), 0..20)]
}

/// A message as the client means it, and how it sends it.
#[derive(Debug, Clone)]
enum Sent {
    Text(String, Vec<usize>),
    Binary(usize, Vec<usize>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

fn sent() -> impl Strategy<Value = Sent> {
    let cuts = || proptest::collection::vec(0usize..LIMIT, 0..4);
    prop_oneof![
        3 => ("[a-z é你😀]{0,70}", cuts()).prop_map(|(t, c)| Sent::Text(t, c)),
        1 => (0usize..=LIMIT, cuts()).prop_map(|(n, c)| Sent::Binary(n, c)),
        1 => proptest::collection::vec(any::<u8>(), 0..=125).prop_map(Sent::Ping),
        1 => proptest::collection::vec(any::<u8>(), 0..=125).prop_map(Sent::Pong),
    ]
}

/// Encodes the messages, fragmenting data at the cuts and putting the next control frame
/// between the fragments of a data message when there is one.
fn encode(messages: &[Sent], masks: &[[u8; 4]]) -> (Vec<u8>, Vec<Incoming>) {
    let mut mask = masks.iter().copied().cycle();
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    let mut controls: Vec<(u8, Vec<u8>)> = Vec::new();
    for message in messages {
        let (opcode, payload, cuts) = match message {
            Sent::Ping(p) => {
                controls.push((PING, p.clone()));
                continue;
            }
            Sent::Pong(p) => {
                controls.push((PONG, p.clone()));
                continue;
            }
            Sent::Text(t, cuts) => (TEXT, t.clone().into_bytes(), cuts),
            Sent::Binary(n, cuts) => (BINARY, vec![0xAB; *n], cuts),
        };
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (payload.len() + 1)).collect();
        cuts.push(payload.len());
        cuts.sort_unstable();
        let mut from = 0;
        for (i, &cut) in cuts.iter().enumerate() {
            let last = i + 1 == cuts.len();
            let code = if i == 0 { opcode } else { CONTINUATION };
            let m = mask.next().unwrap_or_default();
            bytes.extend(client_with(last, code, &payload[from..cut], m));
            from = cut;
            if let Some((code, p)) = controls.pop().filter(|_| !last) {
                bytes.extend(client_with(true, code, &p, mask.next().unwrap_or_default()));
                expected.push(incoming(code, p));
            }
        }
        expected.push(match message {
            Sent::Text(t, _) => Incoming::Text(t.clone()),
            _ => Incoming::Binary,
        });
    }
    for (code, p) in controls {
        bytes.extend(client_with(true, code, &p, mask.next().unwrap_or_default()));
        expected.push(incoming(code, p));
    }
    (bytes, expected)
}

fn incoming(opcode: u8, payload: Vec<u8>) -> Incoming {
    if opcode == PING {
        Incoming::Ping(payload)
    } else {
        Incoming::Pong
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_split_anywhere_give_one_answer(
        segments in proptest::collection::vec(segment(), 0..12),
        cuts in proptest::collection::vec(any::<usize>(), 0..30),
    ) {
        let bytes = segments.concat();
        let whole = feed_cut(&bytes, &[]);
        let split = feed_cut(&bytes, &cuts);
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn valid_streams_decode_to_what_was_sent_however_split(
        messages in proptest::collection::vec(sent(), 0..10),
        masks in proptest::collection::vec(any::<[u8; 4]>(), 1..5),
        cuts in proptest::collection::vec(any::<usize>(), 0..30),
    ) {
        let (bytes, expected) = encode(&messages, &masks);
        let (got, error) = feed_cut(&bytes, &cuts);
        prop_assert_eq!(error, None);
        prop_assert_eq!(got, expected);
    }
}
