//! One async function per endpoint: typed inputs in, a reply or a rejection out.

use warp::http::StatusCode;
use warp::reply::{Response, json, with_status};
use warp::{Rejection, Reply};

use super::dto::*;
use crate::service::{NewUser, Service, Session};

fn created<T: serde::Serialize>(body: &T) -> Response {
    with_status(json(body), StatusCode::CREATED).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub async fn health() -> Result<Response, Rejection> {
    Ok(json(&Health { status: "ok" }).into_response())
}

pub async fn register(svc: Service, req: RegisterRequest) -> Result<Response, Rejection> {
    let user = svc
        .register(NewUser {
            email: req.email,
            password: req.password,
            display_name: req.display_name,
        })
        .await?;
    Ok(created(&UserDto::from(&user)))
}

pub async fn login(svc: Service, req: LoginRequest) -> Result<Response, Rejection> {
    let outcome = svc.login(&req.email, &req.password).await?;
    Ok(json(&LoginResponse::from(outcome)).into_response())
}

pub async fn logout(svc: Service, session: Session) -> Result<Response, Rejection> {
    svc.logout(&session)?;
    Ok(no_content())
}

pub async fn me(session: Session) -> Result<Response, Rejection> {
    Ok(json(&UserDto::from(&session.user)).into_response())
}

pub async fn update_me(
    svc: Service,
    session: Session,
    req: UpdateProfileRequest,
) -> Result<Response, Rejection> {
    let user = svc.update_profile(&session, &req.display_name)?;
    Ok(json(&UserDto::from(&user)).into_response())
}

pub async fn change_password(
    svc: Service,
    session: Session,
    req: ChangePasswordRequest,
) -> Result<Response, Rejection> {
    svc.change_password(&session, &req.current_password, &req.new_password)
        .await?;
    Ok(no_content())
}

pub async fn delete_me(
    svc: Service,
    session: Session,
    req: DeleteAccountRequest,
) -> Result<Response, Rejection> {
    svc.delete_account(&session, &req.password).await?;
    Ok(no_content())
}
