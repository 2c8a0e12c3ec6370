//! The delivery queue: bounded, and when full it gives up the least severe, oldest item
//! first, so that a burst of noise can never push out a critical finding.

use std::collections::VecDeque;

/// One item waiting for delivery.
#[derive(Debug)]
pub struct Queued<T> {
    /// Higher is more important.
    pub rank: u8,
    /// The payload.
    pub item: T,
}

/// See the module docs.
#[derive(Debug)]
pub struct BoundedQueue<T> {
    items: VecDeque<Queued<T>>,
    capacity: usize,
}

impl<T> BoundedQueue<T> {
    /// A queue holding at most `capacity` items (at least one).
    pub fn new(capacity: usize) -> Self {
        BoundedQueue {
            items: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Adds an item; returns the one given up to make room, if any (possibly `item` itself
    /// when everything queued is more important).
    pub fn push(&mut self, rank: u8, item: T) -> Option<T> {
        if self.items.len() < self.capacity {
            self.items.push_back(Queued { rank, item });
            return None;
        }
        let weakest = self.weakest()?;
        if self.items[weakest].rank > rank {
            return Some(item);
        }
        let dropped = self.items.remove(weakest).map(|q| q.item);
        self.items.push_back(Queued { rank, item });
        dropped
    }

    /// Takes up to `n` items from the front (oldest first).
    pub fn take(&mut self, n: usize) -> Vec<Queued<T>> {
        let n = n.min(self.items.len());
        self.items.drain(..n).collect()
    }

    /// Puts items that failed back at the front, in their order; what no longer fits is
    /// returned.
    pub fn put_back(&mut self, items: Vec<Queued<T>>) -> Vec<T> {
        let mut overflow = Vec::new();
        for q in items.into_iter().rev() {
            if self.items.len() < self.capacity {
                self.items.push_front(q);
            } else if let Some(dropped) = self.push(q.rank, q.item) {
                overflow.push(dropped);
            }
        }
        overflow
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Empties the queue.
    pub fn drain_all(&mut self) -> Vec<T> {
        self.items.drain(..).map(|q| q.item).collect()
    }

    /// Index of the least important item, the oldest among equals.
    fn weakest(&self) -> Option<usize> {
        let min = self.items.iter().map(|q| q.rank).min()?;
        self.items.iter().position(|q| q.rank == min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_severe_when_full() {
        let mut q = BoundedQueue::new(3);
        assert!(q.push(1, "low-a").is_none());
        assert!(q.push(4, "crit").is_none());
        assert!(q.push(1, "low-b").is_none());
        assert_eq!(q.push(3, "high"), Some("low-a"));
        assert_eq!(q.push(2, "medium"), Some("low-b"));
        assert_eq!(
            q.push(1, "low-c"),
            Some("low-c"),
            "nothing weaker to give up"
        );
        let left: Vec<&str> = q.take(10).into_iter().map(|x| x.item).collect();
        assert_eq!(left, ["crit", "high", "medium"]);
    }

    #[test]
    fn ten_thousand_pushes_stay_within_capacity() {
        let mut q = BoundedQueue::new(256);
        let mut dropped = 0;
        for i in 0..10_000u32 {
            if q.push((i % 4) as u8, i).is_some() {
                dropped += 1;
            }
        }
        assert_eq!(q.len(), 256);
        assert_eq!(dropped, 10_000 - 256);
        assert!(
            q.take(256).iter().all(|x| x.rank == 3),
            "only the most severe are left"
        );
    }

    #[test]
    fn failed_items_go_back_to_the_front() {
        let mut q = BoundedQueue::new(4);
        for i in 0..4 {
            q.push(1, i);
        }
        let batch = q.take(2);
        q.push(1, 9);
        let overflow = q.put_back(batch);
        assert_eq!(overflow, vec![1], "one no longer fits");
        let order: Vec<i32> = q.take(10).into_iter().map(|x| x.item).collect();
        assert_eq!(order.len(), 4);
        assert!(order.contains(&0) && order.contains(&9));
    }
}
