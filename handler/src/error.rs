//! DynamoDB's errors: the type a client sees in `__type`, its HTTP status, and the message.

use std::fmt;

use crate::storage::StorageError;

/// The error types dynabox answers with. `type_name` is what clients read after the `#` of
/// `__type`, so each variant is spelled exactly as DynamoDB spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Validation,
    Serialization,
    UnknownOperation,
    MissingAuthenticationToken,
    IncompleteSignature,
    UnrecognizedClient,
    InvalidSignature,
    AccessDenied,
    ResourceNotFound,
    TableNotFound,
    TableAlreadyExists,
    TableInUse,
    BackupNotFound,
    BackupInUse,
    ContinuousBackupsUnavailable,
    PointInTimeRecoveryUnavailable,
    InvalidRestoreTime,
    ExportNotFound,
    ExportConflict,
    InvalidExportTime,
    ImportNotFound,
    ImportConflict,
    ResourceInUse,
    LimitExceeded,
    ConditionalCheckFailed,
    TransactionCanceled,
    IdempotentParameterMismatch,
    Throttling,
    RequestEntityTooLarge,
    InternalServerError,
    /// DynamoDB Streams: a shard iterator older than 15 minutes.
    ExpiredIterator,
    /// DynamoDB Streams: a position whose records were trimmed (past 24 hours).
    TrimmedDataAccess,
}

impl ErrorKind {
    pub fn type_name(self) -> &'static str {
        match self {
            ErrorKind::Validation => "ValidationException",
            ErrorKind::Serialization => "SerializationException",
            ErrorKind::UnknownOperation => "UnknownOperationException",
            ErrorKind::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ErrorKind::IncompleteSignature => "IncompleteSignatureException",
            ErrorKind::UnrecognizedClient => "UnrecognizedClientException",
            ErrorKind::InvalidSignature => "InvalidSignatureException",
            ErrorKind::AccessDenied => "AccessDeniedException",
            ErrorKind::ResourceNotFound => "ResourceNotFoundException",
            ErrorKind::TableNotFound => "TableNotFoundException",
            ErrorKind::TableAlreadyExists => "TableAlreadyExistsException",
            ErrorKind::TableInUse => "TableInUseException",
            ErrorKind::BackupNotFound => "BackupNotFoundException",
            ErrorKind::BackupInUse => "BackupInUseException",
            ErrorKind::ContinuousBackupsUnavailable => "ContinuousBackupsUnavailableException",
            ErrorKind::PointInTimeRecoveryUnavailable => "PointInTimeRecoveryUnavailableException",
            ErrorKind::InvalidRestoreTime => "InvalidRestoreTimeException",
            ErrorKind::ExportNotFound => "ExportNotFoundException",
            ErrorKind::ExportConflict => "ExportConflictException",
            ErrorKind::InvalidExportTime => "InvalidExportTimeException",
            ErrorKind::ImportNotFound => "ImportNotFoundException",
            ErrorKind::ImportConflict => "ImportConflictException",
            ErrorKind::ResourceInUse => "ResourceInUseException",
            ErrorKind::LimitExceeded => "LimitExceededException",
            ErrorKind::ConditionalCheckFailed => "ConditionalCheckFailedException",
            ErrorKind::TransactionCanceled => "TransactionCanceledException",
            ErrorKind::IdempotentParameterMismatch => "IdempotentParameterMismatchException",
            ErrorKind::Throttling => "ThrottlingException",
            ErrorKind::RequestEntityTooLarge => "RequestEntityTooLarge",
            ErrorKind::InternalServerError => "InternalServerError",
            ErrorKind::ExpiredIterator => "ExpiredIteratorException",
            ErrorKind::TrimmedDataAccess => "TrimmedDataAccessException",
        }
    }

    /// The namespace DynamoDB puts before `#` in `__type`: protocol-level errors come from the
    /// Coral framework, the rest from the DynamoDB service model.
    pub fn namespace(self) -> &'static str {
        match self {
            ErrorKind::Validation => "com.amazon.coral.validate",
            ErrorKind::Serialization
            | ErrorKind::UnknownOperation
            | ErrorKind::MissingAuthenticationToken
            | ErrorKind::IncompleteSignature
            | ErrorKind::UnrecognizedClient
            | ErrorKind::InvalidSignature
            | ErrorKind::AccessDenied
            | ErrorKind::RequestEntityTooLarge => "com.amazon.coral.service",
            _ => "com.amazonaws.dynamodb.v20120810",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InternalServerError => 500,
            ErrorKind::RequestEntityTooLarge => 413,
            _ => 400,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// The old item a failed condition returns (ReturnValuesOnConditionCheckFailure=ALL_OLD).
    pub item: Option<serde_json::Map<String, serde_json::Value>>,
    /// A cancelled transaction's `CancellationReasons`, one per action in request order.
    pub reasons: Option<Vec<serde_json::Value>>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError { kind, message: message.into(), item: None, reasons: None }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Validation, message)
    }

    /// DynamoDB's "One or more parameter values were invalid: ..." family.
    pub fn invalid_parameter(detail: impl fmt::Display) -> Self {
        Self::validation(format!("One or more parameter values were invalid: {detail}"))
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Serialization, message)
    }

    pub fn resource_not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ResourceNotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InternalServerError, message)
    }

    /// A cancelled transaction: `reasons` holds each action's `{"Code": …}`, and the message lists
    /// the codes in order, as DynamoDB words it.
    pub fn transaction_canceled(reasons: Vec<serde_json::Value>) -> Self {
        let codes: Vec<&str> = reasons.iter().map(|r| r["Code"].as_str().unwrap_or("None")).collect();
        let message = format!(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
            codes.join(", ")
        );
        ApiError { reasons: Some(reasons), ..Self::new(ErrorKind::TransactionCanceled, message) }
    }
}

/// A storage failure as the client sees it.
impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::NoSuchKeyspace => ApiError::resource_not_found("Requested resource not found"),
            StorageError::Internal(detail) => {
                // The detail names the store's internals: for the server's log, never for clients.
                // Empty when the host has logged it already.
                if !detail.is_empty() {
                    eprintln!("dynabox: storage failed: {detail}");
                }
                ApiError::internal("Internal server error")
            }
            StorageError::OutcomeUnknown => ApiError::internal(
                "Internal server error: the connection to the database was lost while the write committed, and \
                 whether it was applied could not be determined; read the item before retrying a write that is not \
                 idempotent",
            ),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.type_name(), self.message)
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;
