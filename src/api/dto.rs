//! JSON shapes of the REST API. Requests reject unknown fields, so a misspelt field is an
//! error rather than a silent no-op.

use serde::{Deserialize, Serialize};

use crate::service::{LoginOutcome, User};

/// `POST /api/v1/auth/register`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// `POST /api/v1/auth/login`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// `PATCH /api/v1/me`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfileRequest {
    pub display_name: String,
}

/// `POST /api/v1/me/password`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// `DELETE /api/v1/me`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccountRequest {
    pub password: String,
}

/// A user: never a hash, never a token.
#[derive(Debug, Serialize)]
pub struct UserDto {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub created_at: String,
}

impl From<&User> for UserDto {
    fn from(u: &User) -> Self {
        UserDto {
            id: u.id.to_string(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            created_at: u.created_at.to_rfc3339(),
        }
    }
}

/// The answer to a successful login.
#[derive(Debug, Serialize)]
pub struct LoginResponse {
    pub token: String,
    pub token_type: &'static str,
    pub expires_at: String,
    pub user: UserDto,
}

impl From<LoginOutcome> for LoginResponse {
    fn from(o: LoginOutcome) -> Self {
        LoginResponse {
            token: o.token,
            token_type: "Bearer",
            expires_at: o.expires_at.to_rfc3339(),
            user: UserDto::from(&o.user),
        }
    }
}

/// `GET /healthz`
#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
}
