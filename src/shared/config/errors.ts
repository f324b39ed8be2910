import { OperatorError } from '../errors.js';

type ConfigErrorCode = 'PORTICO_ERR_CONFIG' | 'PORTICO_ERR_CONFIG_UNREADABLE';

/**
 * Thrown when a config cannot be used; `lines` has one human line per problem, and they are
 * what stderr shows. `PORTICO_ERR_CONFIG_UNREADABLE` when there is no text to validate.
 */
export class ConfigError extends OperatorError {
  declare readonly code: ConfigErrorCode;
  constructor(lines: string[], options?: ErrorOptions & { code?: ConfigErrorCode }) {
    super(options?.code ?? 'PORTICO_ERR_CONFIG', `invalid configuration:\n${lines.join('\n')}`, {
      ...options,
      lines,
    });
  }
}
