//! The role check of every `/api` route, as an extractor: a handler taking `Authed<Writer>`
//! runs only for a valid token whose role is writer or admin. Missing or unknown token: 401;
//! role too low: 403.
//!
//! Tokens are read from `Authorization: Bearer <t>` (also `Token <t>` as InfluxDB 2 clients
//! send it, and Basic with the token as password as InfluxDB 1 clients send it), then from the
//! query: `access_token` (browsers cannot set headers on WebSocket/EventSource) or `p`
//! (InfluxDB 1 `/write?u=&p=`).

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};

use crate::error::ApiError;
use crate::{AppState, Role};

/// A role requirement, as a type.
pub trait Requirement {
    const ROLE: Role;
}

/// Any valid token.
#[derive(Debug)]
pub struct Reader;
/// Writer or admin.
#[derive(Debug)]
pub struct Writer;
/// Admin only.
#[derive(Debug)]
pub struct Admin;

impl Requirement for Reader {
    const ROLE: Role = Role::Reader;
}
impl Requirement for Writer {
    const ROLE: Role = Role::Writer;
}
impl Requirement for Admin {
    const ROLE: Role = Role::Admin;
}

/// Proof that the request carries a token with at least role `R`.
#[derive(Debug)]
pub struct Authed<R> {
    pub role: Role,
    /// Who acts, for audit trails: the token's id (`dpl_<id>_...`), or `admin` for the
    /// configured admin token.
    pub who: String,
    _r: PhantomData<R>,
}

/// The id part of a `dpl_<id>_<secret>` token; `admin` for any other (configured) token.
pub fn token_id(token: &str) -> String {
    token
        .strip_prefix("dpl_")
        .and_then(|rest| rest.split_once('_'))
        .map(|(id, _)| id.to_string())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| "admin".to_string())
}

fn from_header(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?.trim();
    let (scheme, rest) = s.split_once(' ')?;
    let rest = rest.trim();
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" | "token" => Some(rest.to_string()),
        "basic" => {
            let decoded = base64_decode(rest)?;
            let text = String::from_utf8(decoded).ok()?;
            text.split_once(':').map(|(_, p)| p.to_string())
        }
        _ => None,
    }
}

fn from_query(query: Option<&str>) -> Option<String> {
    let q = query?;
    for pair in q.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "access_token" || k == "p" {
            return percent_decode(v);
        }
    }
    None
}

/// Extracts the token of a request, if any.
pub fn token_of(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(from_header)
        .or_else(|| from_query(parts.uri.query()))
}

impl<R: Requirement + Send + Sync> FromRequestParts<AppState> for Authed<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = token_of(parts) else {
            return Err(ApiError::unauthorized(
                "missing token: send `Authorization: Bearer <token>`",
            ));
        };
        let auth = state.auth.clone();
        let who = token_id(&token);
        let role = tokio::task::spawn_blocking(move || auth.verify(&token))
            .await
            .ok()
            .flatten()
            .ok_or_else(|| ApiError::unauthorized("invalid token"))?;
        if role < R::ROLE {
            return Err(ApiError::forbidden(format!(
                "this needs the {} role; the token has {}",
                R::ROLE.as_str(),
                role.as_str()
            )));
        }
        Ok(Authed {
            role,
            who,
            _r: PhantomData,
        })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = T.iter().position(|x| *x == c)? as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_schemes() {
        let h = |s: &str| from_header(&HeaderValue::from_str(s).unwrap());
        assert_eq!(h("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(h("Token abc").as_deref(), Some("abc"));
        // "user:tok" in base64
        assert_eq!(h("Basic dXNlcjp0b2s=").as_deref(), Some("tok"));
        assert_eq!(h("Digest x"), None);
        assert_eq!(from_query(Some("db=x&p=a%5Fb")).as_deref(), Some("a_b"));
        assert_eq!(from_query(Some("access_token=t&x=1")).as_deref(), Some("t"));
        assert_eq!(from_query(Some("p=%zz")), None);
        assert_eq!(from_query(Some("p=%4")), None);
        assert_eq!(token_id("dpl_ab12_secret"), "ab12");
        assert_eq!(token_id("my-configured-token"), "admin");
    }
}
