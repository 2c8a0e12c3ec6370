//! Probing comes in bursts of malformed inputs, each ending in an error. One error alone
//! looks the same as a function's occasional legitimate failure, so an error is called
//! probing only as part of a burst: at least [`ERROR_BURST`]`.0` errors among the
//! environment's last [`ERROR_BURST`]`.1` invocations. The errors before the burst showed
//! are held and reported with the finding that names it (`earlier_requests`).

use std::collections::VecDeque;

/// (errors, out of the last invocations) that make a burst. Probes come back to back;
/// ordinary errors are scattered, so three in five is rare for them.
pub const ERROR_BURST: (usize, usize) = (3, 5);

#[derive(Debug)]
struct Recent {
    request_id: Option<String>,
    error: bool,
    reported: bool,
}

/// The environment's last few invocations: which ended in an error, which were reported.
#[derive(Debug, Default)]
pub struct ErrorBursts {
    recent: VecDeque<Recent>,
}

impl ErrorBursts {
    /// Notes the newest invocation; true when it is an error of a burst.
    pub fn note(&mut self, request_id: Option<&str>, error: bool) -> bool {
        if self.recent.len() == ERROR_BURST.1 {
            self.recent.pop_front();
        }
        self.recent.push_back(Recent {
            request_id: request_id.map(str::to_string),
            error,
            reported: false,
        });
        error && self.recent.iter().filter(|r| r.error).count() >= ERROR_BURST.0
    }

    /// The earlier errors of the window that no finding has named yet, oldest first;
    /// they are named from now on.
    pub fn take_unreported(&mut self) -> Vec<String> {
        let newest = self.recent.len().saturating_sub(1);
        self.recent
            .iter_mut()
            .take(newest)
            .filter(|r| r.error && !r.reported)
            .filter_map(|r| {
                r.reported = true;
                r.request_id.clone()
            })
            .collect()
    }

    /// The newest invocation has a finding (or had one in real time).
    pub fn mark_reported(&mut self) {
        if let Some(r) = self.recent.back_mut() {
            r.reported = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(b: &mut ErrorBursts, id: &str, error: bool) -> bool {
        b.note(Some(id), error)
    }

    #[test]
    fn scattered_errors_are_no_burst() {
        let mut b = ErrorBursts::default();
        let pattern = [
            true, false, false, true, false, false, true, false, false, true,
        ];
        for (i, e) in pattern.into_iter().enumerate() {
            assert!(!note(&mut b, &i.to_string(), e), "invocation {i}");
        }
    }

    #[test]
    fn the_third_error_in_five_names_the_two_before_it_once() {
        let mut b = ErrorBursts::default();
        assert!(!note(&mut b, "a", true));
        assert!(!note(&mut b, "ok", false));
        assert!(!note(&mut b, "b", true));
        assert!(note(&mut b, "c", true));
        assert_eq!(b.take_unreported(), ["a", "b"]);
        b.mark_reported();
        assert!(note(&mut b, "d", true));
        assert!(
            b.take_unreported().is_empty(),
            "a, b and c were named already"
        );
    }

    #[test]
    fn an_error_that_left_the_window_is_not_named() {
        let mut b = ErrorBursts::default();
        note(&mut b, "old", true);
        for i in 0..4 {
            note(&mut b, &format!("ok{i}"), false);
        }
        note(&mut b, "x", true);
        note(&mut b, "y", true);
        assert!(note(&mut b, "z", true));
        assert_eq!(b.take_unreported(), ["x", "y"]);
    }
}
