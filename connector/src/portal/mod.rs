//! The citizen portal (OASC MIM4): a citizen logs in with the city's e-ID provider and sees, grants,
//! refuses and withdraws consent, and sees who received their data. It talks to the rest of the connector
//! only through [`backend::PortalBackend`].

pub mod backend;
