//! What the audit log's `action` column names: one enum, so no handler can invent a spelling
//! and the page, the log and the tests agree on every name.

use std::fmt;

/// Every action the admin page (or its background work) records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Login,
    Logout,
    ChangePassword,
    RotateCert,
    ReissueTokens,
    RotateJwtKey,
    RevokeJwtKey,
    RotateCa,
    /// The operator ended a CA overlap (the job row keeps the kind `rotate-ca`).
    RotateCaFinish,
    RotateOauthSecret,
    RotateCredential,
    /// Automatic renewal of an item that reached its renewal point.
    Renew,
}

impl Action {
    pub const ALL: [Action; 12] = [
        Action::Login,
        Action::Logout,
        Action::ChangePassword,
        Action::RotateCert,
        Action::ReissueTokens,
        Action::RotateJwtKey,
        Action::RevokeJwtKey,
        Action::RotateCa,
        Action::RotateCaFinish,
        Action::RotateOauthSecret,
        Action::RotateCredential,
        Action::Renew,
    ];

    /// The name stored in the database (stable: existing rows use it).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Login => "login",
            Action::Logout => "logout",
            Action::ChangePassword => "change-password",
            Action::RotateCert => "rotate-cert",
            Action::ReissueTokens => "reissue-tokens",
            Action::RotateJwtKey => "rotate-jwt-key",
            Action::RevokeJwtKey => "revoke-jwt-key",
            Action::RotateCa => "rotate-ca",
            Action::RotateCaFinish => "rotate-ca-finish",
            Action::RotateOauthSecret => "rotate-oauth-secret",
            Action::RotateCredential => "rotate-credential",
            Action::Renew => "renew",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_stored_ones_and_round_trip() {
        // Rows already in the database use these spellings: changing one orphans them.
        let names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(
            names,
            [
                "login",
                "logout",
                "change-password",
                "rotate-cert",
                "reissue-tokens",
                "rotate-jwt-key",
                "revoke-jwt-key",
                "rotate-ca",
                "rotate-ca-finish",
                "rotate-oauth-secret",
                "rotate-credential",
                "renew",
            ]
        );
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Action::parse("probe"), None);
        assert_eq!(Action::parse("Login"), None);
    }
}
