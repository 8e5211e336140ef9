//! What the audit trail says about logins (see [`crate::audit::Detail`]).

use crate::audit::Detail;
use crate::directory::BindRefusal;
use crate::session::Roles;

/// The roles a login gave, as catalogue keys.
pub(super) fn roles_key(roles: Roles) -> String {
    if roles.any() {
        roles.to_list().split(',').map(|r| format!("audit.role.{r}")).collect::<Vec<_>>().join(",")
    } else {
        "audit.role.user".to_string()
    }
}

pub(super) fn with_roles(roles: Roles) -> Detail {
    Detail::new("roles").arg("roles_key", roles_key(roles))
}

/// AD's answer to a bind, as a catalogue key.
pub(super) fn bind_key(refusal: BindRefusal) -> String {
    format!("audit.bind.{}", refusal.id())
}

pub(super) fn bind_refused(refusal: BindRefusal) -> Detail {
    Detail::new("bind_refused").arg("refusal_key", bind_key(refusal))
}
