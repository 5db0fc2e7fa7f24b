//! DTLS handshake timing for every str0m session in Parley (calls, group
//! calls, the SFU).
//!
//! str0m's DTLS (dimpl) resends a lost handshake flight after 1 s, the
//! RFC 6347 default for an unknown path. On a call that second is
//! audible: the DTLS server finishes the handshake first and starts sending
//! SRTP, and when the server's last flight is lost, the client drops that
//! media until its own resend brings the flight back. At 5 % loss this cost
//! the first half second of a call in about one call in six
//! (`parley demo call --loss 5 --seed 6`). WebRTC sets the first resend from
//! the ICE round-trip time with a 50 ms floor; ICE has already shown the
//! path answers, so an early resend mostly costs a few hundred bytes.
//! Parley starts at [`FLIGHT_START_RTO`] and doubles, with more retries so
//! that a dead path still takes about as long to give up on.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use str0m::config::CryptoProvider;
use str0m::crypto::CryptoError;
use str0m::crypto::dtls::{
    DtlsCert, DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider, DtlsVersion, ProtocolVersion,
};

/// First handshake resend: above a loopback or LAN round trip, well under
/// a second. dimpl doubles it per retry (with ±25 % jitter).
pub const FLIGHT_START_RTO: Duration = Duration::from_millis(100);

/// Resends per flight: 0.1 + 0.2 + … + 6.4 s ≈ 13 s before giving up, about
/// dimpl's default of four resends from 1 s.
const FLIGHT_RETRIES: usize = 7;

/// str0m's crypto (aws-lc-rs) with Parley's DTLS timing; pass it to
/// `RtcConfig::set_crypto_provider` for every session.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    static DTLS: FastResendDtls = FastResendDtls;
    PROVIDER
        .get_or_init(|| {
            let mut provider = str0m::crypto::from_feature_flags();
            provider.dtls_provider = &DTLS;
            Arc::new(provider)
        })
        .clone()
}

thread_local! {
    /// The seed and a counter for DTLS sessions made on this thread, when
    /// a simulation asked for it ([`seed_this_thread_for_simulation`]).
    static SIMULATION_SEED: std::cell::Cell<Option<(u64, u64)>> =
        const { std::cell::Cell::new(None) };
}

/// For virtual-time simulations only: DTLS sessions made on this thread
/// from now on draw their non-cryptographic randomness (resend jitter,
/// hello randoms) from `seed`, each from its own stream, so a simulated
/// call repeats exactly. Keys still come from the system's secure
/// generator. Never in production: hello randoms would repeat across runs.
pub fn seed_this_thread_for_simulation(seed: u64) {
    SIMULATION_SEED.with(|s| s.set(Some((seed, 0))));
}

/// The next simulation seed on this thread, if one was set.
fn next_simulation_seed() -> Option<u64> {
    SIMULATION_SEED.with(|s| {
        let (seed, n) = s.get()?;
        s.set(Some((seed, n + 1)));
        Some(seed ^ (n + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
    })
}

/// dimpl, configured as str0m's aws-lc-rs backend configures it, but for the
/// resend timing.
#[derive(Debug)]
struct FastResendDtls;

impl DtlsProvider for FastResendDtls {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        dimpl::certificate::generate_self_signed_certificate().ok()
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        dtls_version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        // ICE has verified return routability already: no server cookie.
        let mut builder = dimpl::Config::builder()
            .use_server_cookie(false)
            .flight_start_rto(FLIGHT_START_RTO)
            .flight_retries(FLIGHT_RETRIES);
        if let Some(mtu) = mtu {
            builder = builder.mtu(mtu);
        }
        if let Some(seed) = next_simulation_seed() {
            builder = builder.dangerously_set_rng_seed(seed);
        }
        let config = Arc::new(
            builder
                .build()
                .map_err(|e| CryptoError::Other(format!("DTLS config: {e}")))?,
        );
        let dtls = match dtls_version {
            DtlsVersion::Dtls12 => dimpl::Dtls::new_12(config, cert.clone(), now),
            DtlsVersion::Dtls13 => dimpl::Dtls::new_13(config, cert.clone(), now),
            DtlsVersion::Auto => dimpl::Dtls::new_auto(config, cert.clone(), now),
            other => {
                return Err(CryptoError::Other(format!(
                    "unsupported DTLS version {other}"
                )));
            }
        };
        Ok(Box::new(Instance(dtls)))
    }
}

struct Instance(dimpl::Dtls);

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("parley DTLS instance")
    }
}

impl DtlsInstance for Instance {
    fn set_active(&mut self, active: bool) {
        self.0.set_active(active);
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        self.0.handle_packet(packet)
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        self.0.poll_output(buf)
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.0.handle_timeout(now)
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        self.0.send_application_data(data)
    }

    fn is_active(&self) -> bool {
        self.0.is_active()
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.0.protocol_version()
    }

    fn is_closing(&self) -> bool {
        self.0.is_closing()
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        self.0.close()
    }
}
