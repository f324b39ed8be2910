/** Thrown when a config cannot be used; `lines` has one human line per problem. */
export class ConfigError extends Error {
  readonly code = 'PORTICO_ERR_CONFIG';
  constructor(
    readonly lines: string[],
    options?: ErrorOptions,
  ) {
    super(`invalid configuration:\n${lines.join('\n')}`, options);
    this.name = 'ConfigError';
  }
}
