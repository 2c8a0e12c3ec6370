use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

fn words() -> Vec<AtomicU64> {
    (0..WORDS).map(|_| AtomicU64::new(0)).collect()
}

fn ready(words: &[AtomicU64]) -> Ring<'_> {
    let ring = Ring::new(words).unwrap();
    ring.format();
    ring
}

fn drain_all(ring: Ring<'_>, reader: &mut Reader) -> (Vec<Vec<u8>>, Drained) {
    drain_at(ring, reader, 0)
}

fn drain_at(ring: Ring<'_>, reader: &mut Reader, now_ms: u64) -> (Vec<Vec<u8>>, Drained) {
    let mut got = Vec::new();
    let drained = reader.drain(ring, now_ms, |event| got.push(event.to_vec()));
    (got, drained)
}

#[test]
fn events_come_out_whole_and_in_order() {
    let words = words();
    let ring = ready(&words);
    let mut reader = Reader::new(ring);
    let long = vec![b'x'; MAX_EVENT];
    for event in [&b"a"[..], b"12345678", b"123456789", &long, b""] {
        ring.push(event).unwrap();
    }
    let (got, drained) = drain_all(ring, &mut reader);
    assert_eq!(
        got,
        vec![
            b"a".to_vec(),
            b"12345678".to_vec(),
            b"123456789".to_vec(),
            long,
            vec![]
        ]
    );
    assert_eq!(
        drained,
        Drained {
            events: 5,
            ..Drained::default()
        }
    );
    assert_eq!(drain_all(ring, &mut reader).1, Drained::default());
}

#[test]
fn a_full_ring_refuses_until_read_and_then_wraps() {
    let words = words();
    let ring = ready(&words);
    let mut reader = Reader::new(ring);
    for i in 0..SLOTS {
        ring.push(i.to_string().as_bytes()).unwrap();
    }
    assert_eq!(ring.push(b"one too many"), Err(PushError::Full));
    let (got, _) = drain_all(ring, &mut reader);
    assert_eq!(got.len() as u64, SLOTS);
    assert_eq!(got[0], b"0");
    // Room again, in slots used before.
    for lap in 0..3 * SLOTS {
        ring.push(format!("lap {lap}").as_bytes()).unwrap();
        let (got, _) = drain_all(ring, &mut reader);
        assert_eq!(got, vec![format!("lap {lap}").into_bytes()]);
    }
}

#[test]
fn what_cannot_be_written_is_refused() {
    let words = words();
    let ring = Ring::new(&words).unwrap();
    assert_eq!(ring.push(b"before format"), Err(PushError::NotReady));
    ring.format();
    assert_eq!(ring.push(&[0; MAX_EVENT + 1]), Err(PushError::TooLong));
    assert!(Ring::new(&words[1..]).is_none());
}

#[test]
fn a_slot_reserved_and_never_written_is_given_up_after_a_while() {
    let words = words();
    let ring = ready(&words);
    let mut reader = Reader::new(ring);
    ring.push(b"before").unwrap();
    // A writer killed between reserving and publishing.
    ring.reserve().unwrap();
    ring.push(b"after").unwrap();
    let (got, drained) = drain_at(ring, &mut reader, 1000);
    assert_eq!((got, drained.lost), (vec![b"before".to_vec()], 0));
    assert_eq!(drain_at(ring, &mut reader, 1000 + STUCK_MS - 1).0.len(), 0);
    let (got, drained) = drain_at(ring, &mut reader, 1000 + STUCK_MS);
    assert_eq!((got, drained.lost), (vec![b"after".to_vec()], 1));
}

#[test]
fn indices_written_by_the_function_are_not_trusted() {
    let words = words();
    let ring = ready(&words);
    let mut reader = Reader::new(ring);
    ring.push(b"lost to the scribble").unwrap();
    words[HEAD_WORD].store(u64::MAX / 2, Ordering::Relaxed);
    assert_eq!(drain_all(ring, &mut reader).1.resynced, 1);
    ring.push(b"after").unwrap();
    assert_eq!(drain_all(ring, &mut reader).0, vec![b"after".to_vec()]);

    // A length beyond the slot, and a tail that says everything was read.
    ring.push(b"lying").unwrap();
    let slot = ring.slot(reader.next);
    slot[1].store(u64::MAX, Ordering::Relaxed);
    let (got, drained) = drain_all(ring, &mut reader);
    assert_eq!((got.len(), drained.lost), (0, 1));
    words[TAIL_WORD].store(u64::MAX, Ordering::Relaxed);
    assert_eq!(ring.push(b"x"), Err(PushError::Full));
    // Warden's next poll puts its own tail back.
    drain_all(ring, &mut reader);
    ring.push(b"x").unwrap();
}

#[test]
fn many_writers_lose_nothing_while_there_is_room() {
    let words = words();
    let ring = ready(&words);
    let mut reader = Reader::new(ring);
    let per_thread = 2_000;
    let mut got = Vec::new();
    let mut refused = 0u64;
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..4)
            .map(|t| {
                scope.spawn(move || {
                    let mut refused = 0u64;
                    for i in 0..per_thread {
                        let event = format!("{t}:{i}");
                        while ring.push(event.as_bytes()).is_err() {
                            refused += 1;
                            std::thread::yield_now();
                        }
                    }
                    refused
                })
            })
            .collect();
        while !writers.iter().all(|w| w.is_finished()) {
            reader.drain(ring, 0, |e| {
                got.push(String::from_utf8(e.to_vec()).unwrap())
            });
        }
        refused = writers.into_iter().map(|w| w.join().unwrap()).sum();
    });
    reader.drain(ring, 0, |e| {
        got.push(String::from_utf8(e.to_vec()).unwrap())
    });
    assert_eq!(
        got.len(),
        4 * per_thread,
        "refused and retried {refused} times"
    );
    // Each writer's events in its own order.
    for t in 0..4 {
        let mine: Vec<usize> = got
            .iter()
            .filter_map(|e| e.strip_prefix(&format!("{t}:")))
            .map(|i| i.parse().unwrap())
            .collect();
        assert_eq!(mine, (0..per_thread).collect::<Vec<_>>());
    }
}
