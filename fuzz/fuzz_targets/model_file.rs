//! A model file (`WARDEN_MODEL`, or the layer's). The first byte picks what the rest is: a
//! whole file (header, digest and payload checked as loaded), or a payload behind the layer
//! model's header and a correct digest, so that the payload's decoder and the scorer are
//! reached (a random file almost never passes the digest).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warden_core::features::N;
use warden_core::model::file::{self, ModelHeader};
use warden_core::model::{Scorer, ShippedModel};

static LAYER_MODEL: &[u8] = include_bytes!("../../layer/model/model.bin");

fn header() -> Option<&'static ModelHeader> {
    static HEADER: OnceLock<Option<ModelHeader>> = OnceLock::new();
    HEADER
        .get_or_init(|| file::decode(LAYER_MODEL).ok().map(|d| d.header))
        .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let model = if which % 2 == 0 {
        ShippedModel::from_bytes(rest)
    } else {
        let Some(header) = header() else { return };
        let Ok(bytes) = file::encode(header, rest) else {
            return;
        };
        ShippedModel::from_bytes(&bytes)
    };
    if let Ok(m) = model {
        for v in [0.0, 1.0, -3.5, 1e6] {
            let _ = m.score(&[v; N], &[v; N]);
        }
    }
});
