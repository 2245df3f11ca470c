//! The decoder frame by frame: each rule, fed whole and in pieces.

use super::*;

pub(super) const MASK: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

/// A masked client frame, as a browser would send it.
pub(crate) fn client_with(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 65535 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn client(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    client_with(fin, opcode, payload, MASK)
}

/// Feeds `bytes` in pieces of `step`, as reads would deliver them; the messages, then the
/// error if one came.
pub(super) fn feed(
    decoder: &mut Decoder,
    bytes: &[u8],
    step: usize,
) -> (Vec<Incoming>, Option<FrameError>) {
    let mut out = Vec::new();
    for piece in bytes.chunks(step.max(1)) {
        let mut at = 0;
        while at < piece.len() {
            let (used, result) = decoder.decode(&piece[at..]);
            at += used;
            match result {
                Ok(Some(message)) => out.push(message),
                Ok(None) => assert_eq!(at, piece.len(), "needs more only when out of input"),
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

fn decode_all(bytes: &[u8]) -> Result<Vec<Incoming>, FrameError> {
    match feed(&mut Decoder::default(), bytes, usize::MAX) {
        (messages, None) => Ok(messages),
        (_, Some(e)) => Err(e),
    }
}

#[test]
fn a_masked_text_frame_decodes() {
    let bytes = client(true, TEXT, "你好".as_bytes());
    assert_eq!(decode_all(&bytes), Ok(vec![Incoming::Text("你好".into())]));
}

#[test]
fn partial_input_is_taken_and_the_message_comes_with_the_last_byte() {
    let bytes = client(true, TEXT, b"hello");
    let mut decoder = Decoder::default();
    for byte in &bytes[..bytes.len() - 1] {
        assert_eq!(decoder.decode(std::slice::from_ref(byte)), (1, Ok(None)));
    }
    assert_eq!(
        decoder.decode(&bytes[bytes.len() - 1..]),
        (1, Ok(Some(Incoming::Text("hello".into()))))
    );
}

#[test]
fn fragments_reassemble_around_control_frames() {
    let mut bytes = client(false, TEXT, b"hel");
    bytes.extend(client(true, PING, b"p"));
    bytes.extend(client(true, CONTINUATION, b"lo"));
    assert_eq!(
        decode_all(&bytes),
        Ok(vec![
            Incoming::Ping(b"p".to_vec()),
            Incoming::Text("hello".into())
        ])
    );
}

#[test]
fn control_frames_between_fragments_of_a_message_of_the_limit_are_fine() {
    let limit = 1000;
    let mut bytes = client(false, TEXT, &[b'a'; 999]);
    bytes.extend(client(true, PING, &[7; 125]));
    bytes.extend(client(true, PONG, &[7; 125]));
    bytes.extend(client(true, CLOSE, &1000u16.to_be_bytes()));
    bytes.extend(client(true, CONTINUATION, b"a"));
    let (messages, error) = feed(&mut Decoder::new(limit), &bytes, 7);
    assert_eq!(error, None);
    assert_eq!(
        messages,
        [
            Incoming::Ping(vec![7; 125]),
            Incoming::Pong,
            Incoming::Close(Some(1000)),
            Incoming::Text("a".repeat(1000)),
        ]
    );
}

#[test]
fn sizes_over_the_limit_are_too_big_from_the_header() {
    let bytes = client(true, TEXT, &vec![b'a'; MAX_MESSAGE_BYTES + 1]);
    assert_eq!(
        Decoder::default().decode(&bytes[..10]),
        (10, Err(FrameError::TooBig))
    );
    let mut fragments = client(false, TEXT, &[b'a'; 600]);
    fragments.extend(client(true, CONTINUATION, &[b'a'; 401]));
    let mut decoder = Decoder::new(1000);
    let second = 600 + 8;
    let (_, error) = feed(&mut decoder, &fragments[..second + 4], usize::MAX);
    assert_eq!(
        error,
        Some(FrameError::TooBig),
        "refused before its payload"
    );
    let exact = client(true, TEXT, &[b'a'; 1000]);
    assert_eq!(feed(&mut Decoder::new(1000), &exact, 100).1, None);
}

#[test]
fn a_message_of_the_limit_holds_no_more_than_the_limit() {
    let limit = 10_000;
    let bytes = client(true, TEXT, &vec![b'a'; limit]);
    let mut decoder = Decoder::new(limit);
    let mut most = 0;
    for piece in bytes.chunks(333) {
        if let (_, Ok(Some(_))) = decoder.decode(piece) {
            break;
        }
        most = most.max(decoder.held());
    }
    assert!(most <= limit, "{most}");
    assert_eq!(decoder.held(), 0, "an idle decoder holds nothing");
}

#[test]
fn invalid_utf8_fails_in_a_partly_received_frame() {
    let bytes = client(
        true,
        TEXT,
        &[[b'o', b'k', 0xFF].as_slice(), &[b'a'; 500]].concat(),
    );
    let header = 4 + 4;
    let mut decoder = Decoder::default();
    assert_eq!(decoder.decode(&bytes[..header + 2]), (header + 2, Ok(None)));
    assert_eq!(
        decoder.decode(&bytes[header + 2..header + 3]),
        (1, Err(FrameError::InvalidUtf8))
    );
}

#[test]
fn invalid_utf8_fails_at_its_fragment_not_at_the_last() {
    let mut bytes = client(false, TEXT, &[0xE4, 0xBD]);
    bytes.extend(client(false, CONTINUATION, &[0xFF]));
    let (_, error) = feed(&mut Decoder::default(), &bytes, usize::MAX);
    assert_eq!(error, Some(FrameError::InvalidUtf8));
}

#[test]
fn a_character_cut_by_fragments_and_reads_is_fine() {
    let text = "你好, 世界";
    let raw = text.as_bytes();
    let mut bytes = client(false, TEXT, &raw[..1]);
    bytes.extend(client(false, CONTINUATION, &raw[1..4]));
    bytes.extend(client(true, CONTINUATION, &raw[4..]));
    for step in 1..bytes.len() {
        let (messages, error) = feed(&mut Decoder::default(), &bytes, step);
        assert_eq!(error, None, "{step}");
        assert_eq!(messages, [Incoming::Text(text.into())]);
    }
}

#[test]
fn the_last_fragment_must_end_on_a_whole_character() {
    let mut bytes = client(false, TEXT, b"a");
    bytes.extend(client(true, CONTINUATION, &[0xE4, 0xBD]));
    assert_eq!(decode_all(&bytes), Err(FrameError::InvalidUtf8));
    assert_eq!(
        decode_all(&client(true, TEXT, &[0xE4])),
        Err(FrameError::InvalidUtf8)
    );
}

#[test]
fn protocol_violations_are_refused_from_the_first_two_bytes() {
    let unmasked = vec![0x81, 0x7D];
    let mut rsv = client(true, TEXT, b"a");
    rsv[0] |= 0x40;
    let fragmented_ping = client(false, PING, b"");
    let long_ping = client(true, PING, &[0; 126]);
    let stray_continuation = client(true, CONTINUATION, &[0; 100]);
    let unknown = client(true, 0x3, &[0; 100]);
    let mut interleaved = client(false, TEXT, b"a");
    let inside = interleaved.len();
    interleaved.extend(client(true, TEXT, &[0; 100]));
    for (bytes, from) in [
        (unmasked, 0),
        (rsv, 0),
        (fragmented_ping, 0),
        (long_ping, 0),
        (stray_continuation, 0),
        (unknown, 0),
        (interleaved, inside),
    ] {
        let (_, error) = feed(&mut Decoder::default(), &bytes[..from + 2], usize::MAX);
        assert_eq!(error.map(FrameError::close_code), Some(1002), "{bytes:?}");
    }
}

#[test]
fn bad_close_frames_are_refused() {
    for payload in [&1005u16.to_be_bytes()[..], &[3], &[0x03, 0xE8, 0xFF]] {
        let error = decode_all(&client(true, CLOSE, payload)).unwrap_err();
        assert!(matches!(error.close_code(), 1002 | 1007), "{payload:?}");
    }
}

#[test]
fn a_decode_error_is_final() {
    let mut decoder = Decoder::default();
    let mut bytes = client(true, 0x3, b"");
    let good = client(true, TEXT, b"fine");
    bytes.extend(&good);
    let (used, error) = decoder.decode(&bytes);
    assert_eq!(error, Err(FrameError::Protocol("unknown opcode")));
    assert!(used <= 2, "nothing after the bad header: {used}");
    for _ in 0..3 {
        assert_eq!(
            decoder.decode(&good),
            (0, Err(FrameError::Protocol("unknown opcode")))
        );
    }
    assert_eq!(
        decoder.error(),
        Some(FrameError::Protocol("unknown opcode"))
    );
}

#[test]
fn close_frames_decode_with_or_without_a_code() {
    let mut bytes = client(true, CLOSE, b"");
    bytes.extend(client(true, CLOSE, &[0x03, 0xE8, b'b', b'y', b'e']));
    assert_eq!(
        decode_all(&bytes),
        Ok(vec![Incoming::Close(None), Incoming::Close(Some(1000))])
    );
}

#[test]
fn binary_is_recognised_but_not_kept() {
    let bytes = client(true, BINARY, &[1; 5000]);
    let mut decoder = Decoder::default();
    assert_eq!(decoder.decode(&bytes[..4000]), (4000, Ok(None)));
    assert_eq!(decoder.held(), 0);
    assert_eq!(decoder.decode(&bytes[4000..]).1, Ok(Some(Incoming::Binary)));
    assert_eq!(
        decode_all(&client(true, PONG, b"")),
        Ok(vec![Incoming::Pong])
    );
}

/// Skips `bytes` in pieces of `step`; whether the close frame was found, and after how many.
fn skip_all(decoder: &mut Decoder, bytes: &[u8], step: usize) -> Option<usize> {
    let mut total = 0;
    for piece in bytes.chunks(step) {
        let (used, skipped) = decoder.skip(piece);
        total += used;
        if skipped == Skipped::Closed {
            return Some(total);
        }
    }
    None
}

#[test]
fn after_an_error_in_a_whole_frame_later_frames_are_skipped_until_the_close() {
    let mut bytes = client(true, TEXT, &[0xFF; 10]);
    let mut decoder = Decoder::new(100);
    let (used, error) = decoder.decode(&bytes);
    assert_eq!((used, error), (bytes.len(), Err(FrameError::InvalidUtf8)));
    bytes.clear();
    bytes.extend(client(true, TEXT, &vec![b'a'; 100_000]));
    bytes.extend(client(true, 0x3, b"junk"));
    let close = client(true, CLOSE, &1000u16.to_be_bytes());
    bytes.extend(&close);
    bytes.extend(b"after");
    assert_eq!(skip_all(&mut decoder, &bytes, 1000), Some(bytes.len() - 5));
    assert_eq!(decoder.held(), 0);
    assert_eq!(decoder.skip(b"more"), (0, Skipped::Closed));
}

#[test]
fn after_an_error_mid_frame_the_rest_of_the_frame_is_skipped() {
    let mut bytes = client(false, TEXT, &[[0xFF].as_slice(), &[b'a'; 300]].concat());
    bytes.extend(client(true, CLOSE, b""));
    let mut decoder = Decoder::default();
    let (used, error) = decoder.decode(&bytes[..20]);
    assert_eq!(error, Err(FrameError::InvalidUtf8));
    assert!(used <= 20);
    assert_eq!(
        skip_all(&mut decoder, &bytes[used..], 7),
        Some(bytes.len() - used)
    );
}

#[test]
fn a_refused_close_frame_is_the_close() {
    let mut decoder = Decoder::default();
    let (_, error) = decoder.decode(&client(true, CLOSE, &[3]));
    assert!(error.is_err());
    assert_eq!(decoder.skip(b""), (0, Skipped::Closed));
}

#[test]
fn a_header_that_cannot_be_a_frame_loses_the_framing() {
    let mut bytes = vec![0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0];
    let mut decoder = Decoder::default();
    assert!(decoder.decode(&bytes).1.is_err());
    bytes = client(true, CLOSE, b"");
    assert_eq!(decoder.skip(&bytes), (bytes.len(), Skipped::More));
}

/// A text frame of `len` bytes whose length takes `field` (126 or 127) whatever it is.
fn with_length_field(field: u8, len: u64) -> Vec<u8> {
    let mut bytes = vec![0x81, 0x80 | field];
    match field {
        126 => bytes.extend_from_slice(&(len as u16).to_be_bytes()),
        _ => bytes.extend_from_slice(&len.to_be_bytes()),
    }
    bytes.extend_from_slice(&MASK);
    bytes
}

#[test]
fn a_length_not_in_its_shortest_form_is_refused_from_the_header() {
    for (field, len) in [(126, 0), (126, 125), (127, 0), (127, 125), (127, 65535)] {
        let bytes = with_length_field(field, len);
        let (_, result) = Decoder::default().decode(&bytes);
        let error = result.expect_err("refused before any payload");
        assert_eq!(error.close_code(), 1002, "{field} carrying {len}");
    }
    for (field, len) in [(126, 126), (126, 65535), (127, 65536)] {
        let bytes = with_length_field(field, len);
        let mut decoder = Decoder::new(1 << 20);
        assert_eq!(decoder.decode(&bytes), (bytes.len(), Ok(None)), "{len}");
    }
}

#[test]
fn a_64_bit_length_with_its_top_bit_set_is_a_protocol_error() {
    let bytes = with_length_field(127, 1 << 63);
    let (_, result) = Decoder::default().decode(&bytes);
    assert_eq!(result.map_err(FrameError::close_code), Err(1002));
}

#[test]
fn stopping_mid_message_frees_it_and_skips_to_the_close() {
    let mut bytes = client(false, TEXT, &[b'a'; 3000]);
    bytes.extend(client(true, CONTINUATION, &[b'a'; 3000]));
    bytes.extend(client(true, CLOSE, b""));
    let mut decoder = Decoder::default();
    assert_eq!(decoder.decode(&bytes[..1000]), (1000, Ok(None)));
    assert!(decoder.held() > 0);
    decoder.stop();
    assert_eq!(decoder.held(), 0);
    assert_eq!(
        skip_all(&mut decoder, &bytes[1000..], 100),
        Some(bytes.len() - 1000)
    );
}
