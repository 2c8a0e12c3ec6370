//! The interface of a scoring model (the shipped generic model implements it) and the
//! attack classes findings are labelled with.

use serde::{Deserialize, Serialize};

use super::vector::N;

/// What a finding says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Input made the function run a shell or an unexpected program.
    CommandInjection,
    /// A shell wired to a network connection.
    ReverseShell,
    /// Sustained computation for someone else, usually with a pool connection.
    CryptoMining,
    /// Data sent out over the network to an unusual destination or in unusual volume.
    ExfiltrationEgress,
    /// Data carried out in an oversized response.
    ExfiltrationResponse,
    /// The role's credentials read and sent out.
    CredentialTheft,
    /// An executable written to the scratch directory and run.
    Dropper,
    /// Something planted that outlives the invocation.
    Persistence,
    /// Input driving runaway compute toward the timeout.
    DenialOfWallet,
    /// Bursts of malformed input producing errors.
    Probing,
    /// Out of the ordinary, matching no known class.
    Anomaly,
}

impl Class {
    /// Every class, in a fixed order (a model's output index may use it).
    pub const ALL: [Class; 11] = [
        Class::CommandInjection,
        Class::ReverseShell,
        Class::CryptoMining,
        Class::ExfiltrationEgress,
        Class::ExfiltrationResponse,
        Class::CredentialTheft,
        Class::Dropper,
        Class::Persistence,
        Class::DenialOfWallet,
        Class::Probing,
        Class::Anomaly,
    ];

    /// The serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::CommandInjection => "command_injection",
            Class::ReverseShell => "reverse_shell",
            Class::CryptoMining => "crypto_mining",
            Class::ExfiltrationEgress => "exfiltration_egress",
            Class::ExfiltrationResponse => "exfiltration_response",
            Class::CredentialTheft => "credential_theft",
            Class::Dropper => "dropper",
            Class::Persistence => "persistence",
            Class::DenialOfWallet => "denial_of_wallet",
            Class::Probing => "probing",
            Class::Anomaly => "anomaly",
        }
    }

    /// Parses the serialised name.
    pub fn parse(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// What a model says about one invocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelOutput {
    /// The most likely attack class and its probability; `None` when the model thinks the
    /// invocation benign.
    pub class: Option<(Class, f32)>,
    /// How unlike anything the model was trained on, 0 (typical) to 1.
    pub anomaly: f32,
    /// Feature index and its share of the decision (any non-negative scale; the detector
    /// normalises), for explanations.
    pub contributions: Vec<(usize, f32)>,
}

impl ModelOutput {
    /// The same verdict with its probability and novelty scaled by `factor` (0..1).
    pub fn discounted(mut self, factor: f32) -> ModelOutput {
        let factor = factor.clamp(0.0, 1.0);
        if let Some((_, p)) = self.class.as_mut() {
            *p *= factor;
        }
        self.anomaly *= factor;
        self
    }
}

/// A scoring model. `raw` is the vector ([`super::vector::vector`]), `z` the same vector
/// normalised by the function's baseline (all zeros while it warms up).
pub trait Scorer: Send + Sync {
    /// Scores one invocation. Must be cheap and must not panic on any finite input.
    fn score(&self, raw: &[f32; N], z: &[f32; N]) -> ModelOutput;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_round_trip() {
        for c in Class::ALL {
            let json = serde_json::to_string(&c).expect("serialises");
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(Class::parse(c.as_str()), Some(c));
        }
        assert_eq!(Class::parse("nope"), None);
    }
}
