/** One line for a failed request, with a hint for the token answers. */
import { ApiError } from './api.ts';

export function ErrorLine({ error }: { error: unknown }) {
  if (error === undefined) return null;
  let hint = '';
  if (error instanceof ApiError && error.status === 401) hint = ' — enter a token above';
  if (error instanceof ApiError && error.status === 403) hint = ' — this token may not do that';
  return (
    <p class="error" role="alert" data-testid="error">
      {(error as Error).message}
      {hint}
    </p>
  );
}
