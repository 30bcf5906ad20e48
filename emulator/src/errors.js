'use strict';
// Google error bodies. Healthcare / Logging / IAM use google.rpc.Status over HTTP
// ({"error":{"code","message","status","details"?}}); Cloud Storage uses its own shape
// ({"error":{"code","message","errors":[{"domain","reason","message"}]}}) without "status".

const HTTP_OF_STATUS = {
  CANCELLED: 499, UNKNOWN: 500, INVALID_ARGUMENT: 400, DEADLINE_EXCEEDED: 504, NOT_FOUND: 404,
  ALREADY_EXISTS: 409, PERMISSION_DENIED: 403, RESOURCE_EXHAUSTED: 429, FAILED_PRECONDITION: 400,
  ABORTED: 409, OUT_OF_RANGE: 400, UNIMPLEMENTED: 501, INTERNAL: 500, UNAVAILABLE: 503,
  DATA_LOSS: 500, UNAUTHENTICATED: 401,
};
// Numeric google.rpc.Code values (LRO error.code, log entries).
const RPC_CODE = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5,
  ALREADY_EXISTS: 6, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9,
  ABORTED: 10, OUT_OF_RANGE: 11, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14,
  DATA_LOSS: 15, UNAUTHENTICATED: 16,
};

/** An error that a handler throws; the router turns it into the right JSON body. */
class ApiError extends Error {
  constructor(status, message, details, httpCode) {
    super(message);
    this.status = status;
    this.httpCode = httpCode || HTTP_OF_STATUS[status] || 500;
    this.details = details;
  }
  body() {
    const e = { code: this.httpCode, message: this.message, status: this.status };
    if (this.details && this.details.length) e.details = this.details;
    return { error: e };
  }
}

/** Cloud Storage flavoured error. */
class GcsError extends Error {
  constructor(httpCode, reason, message, extraHeaders) {
    super(message);
    this.httpCode = httpCode;
    this.reason = reason;
    this.extraHeaders = extraHeaders;
  }
  body() {
    return { error: { code: this.httpCode, message: this.message,
      errors: [{ message: this.message, domain: 'global', reason: this.reason }] } };
  }
}

const invalid = (msg, details) => new ApiError('INVALID_ARGUMENT', msg, details);
const notFound = (msg) => new ApiError('NOT_FOUND', msg);
const alreadyExists = (msg) => new ApiError('ALREADY_EXISTS', msg);

function badRequestDetail(violations) {
  return { '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: violations };
}

function sendJson(res, code, obj, headers) {
  const body = Buffer.from(JSON.stringify(obj, null, 2) + '\n');
  res.writeHead(code, Object.assign({
    'Content-Type': 'application/json; charset=UTF-8',
    'Content-Length': body.length,
  }, headers || {}));
  res.end(body);
}

function sendError(res, err) {
  if (err instanceof ApiError || err instanceof GcsError) {
    sendJson(res, err.httpCode, err.body(), err.extraHeaders);
  } else {
    const e = new ApiError('INTERNAL', 'Internal error encountered.');
    sendJson(res, 500, e.body());
  }
}

module.exports = { ApiError, GcsError, HTTP_OF_STATUS, RPC_CODE, invalid, notFound, alreadyExists,
  badRequestDetail, sendJson, sendError };
