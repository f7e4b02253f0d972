/** Why the archive cannot be used: unreachable, or (embedded) its folder is owned by another process. */
export class ArchiveUnavailableError extends Error {
  override name = 'ArchiveUnavailableError';
}

export class ArchiveLockedError extends ArchiveUnavailableError {
  override name = 'ArchiveLockedError';
}
