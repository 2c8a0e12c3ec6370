//! Warden's in-process guard: a shared library loaded with `LD_PRELOAD` into the function's
//! runtime and everything it starts. It stands in for a few libc calls Warden cannot see from
//! outside (a connect and close inside one sample, UDP without connect, an exec from memory or
//! through the dynamic loader, a signal to Warden, a read of credentials, the role's secret key in what is sent), sends one datagram
//! per call to Warden's abstract socket, and with a policy can refuse the call.
//!
//! - `sys`: the constructor, the hooks and the socket: the only `unsafe` code;
//! - `settings`: the environment, read once at load;
//! - `guard`: the state hooks read (socket name, policy);
//! - `policy` (crate `warden-policy`): the zero-trust policy file and its matching, and the
//!   lockdown page;
//! - `rules`: the verdict on an egress or exec, the policy's tightened by a lockdown;
//! - `report`: each event as a datagram, and the verdict on its call;
//! - `line`, `dns`, `exec`: the datagram buffer, a DNS query's name, what an exec runs;
//! - `secret`: the role's secret key as it would look in a payload that carries it out.

// The hooks are left out of unit tests, so that the test binary keeps libc's functions; what
// only they call is then unused.
#![cfg_attr(test, allow(dead_code))]

use warden_policy::policy;

mod dns;
mod exec;
mod guard;
mod line;
mod report;
mod rules;
mod secret;
mod settings;
#[cfg(not(test))]
mod sys;
