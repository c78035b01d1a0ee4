import { useMutation } from '@apollo/client/react';
import { useState, type FormEvent } from 'react';
import { useAuth } from '../auth/AuthProvider';
import { Field, FormError } from '../components/ui';
import { mapErrors, type FormErrors } from '../errors/mapErrors';
import { LoginDocument, RegisterDocument } from '../gql/graphql';
import { settle } from '../lib/mutate';
import { Link, navigate, useLocation } from '../router';

const REASONS: Record<string, string> = {
  expired: 'Your session has ended. Please sign in again.',
  elsewhere: 'You signed out in another tab.',
  'signed-out': 'You are signed out.',
};

/** Only paths inside the app (no open redirect). */
function nextPath(q: URLSearchParams): string {
  const next = q.get('next') ?? '/';
  return next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

export function SignInPage() {
  const loc = useLocation();
  const { signIn } = useAuth();
  const [login, { loading }] = useMutation(LoginDocument);
  const [errors, setErrors] = useState<FormErrors | null>(null);
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const reason = loc.query.get('reason');

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setErrors(null);
    const { data, error } = await settle(() => login({ variables: { input: { email, password } } }));
    if (!data?.login) return setErrors(mapErrors(error, 'signin'));
    signIn(data.login);
    navigate(nextPath(loc.query), { replace: true });
  };

  return (
    <section className="narrow">
      <h1>Sign in</h1>
      {reason && REASONS[reason] ? (
        <p className="notice" data-testid="signin-reason">
          {REASONS[reason]}
        </p>
      ) : null}
      <form className="stack" onSubmit={submit} aria-label="Sign in">
        <Field label="Email" name="email" error={errors?.fields.email}>
          <input id="f-email" name="email" type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </Field>
        <Field label="Password" name="password" error={errors?.fields.password}>
          <input id="f-password" name="password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </Field>
        <FormError message={errors?.form} />
        <button type="submit" disabled={loading}>
          {loading ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <p>
        New here? <Link to={`/signup${loc.search}`}>Create an account</Link>. Demo guest: guest@draftr.test / correct-horse-greta.
      </p>
    </section>
  );
}

export function SignUpPage() {
  const loc = useLocation();
  const { signIn } = useAuth();
  const [register, { loading }] = useMutation(RegisterDocument);
  const [errors, setErrors] = useState<FormErrors | null>(null);
  const [f, setF] = useState({ displayName: '', email: '', password: '' });
  const set = (k: keyof typeof f) => (e: { target: { value: string } }) => setF({ ...f, [k]: e.target.value });

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setErrors(null);
    const { data, error } = await settle(() => register({ variables: { input: f } }));
    if (!data?.register) return setErrors(mapErrors(error, 'signup', {}, ['displayName', 'email', 'password']));
    signIn(data.register);
    navigate(nextPath(loc.query), { replace: true });
  };

  return (
    <section className="narrow">
      <h1>Create an account</h1>
      <form className="stack" onSubmit={submit} aria-label="Sign up">
        <Field label="Name" name="displayName" error={errors?.fields.displayName}>
          <input id="f-displayName" name="displayName" required value={f.displayName} onChange={set('displayName')} />
        </Field>
        <Field label="Email" name="email" error={errors?.fields.email}>
          <input id="f-email" name="email" type="email" autoComplete="username" required value={f.email} onChange={set('email')} />
        </Field>
        <Field label="Password" name="password" error={errors?.fields.password} hint="10 to 128 characters; a few words make a good one.">
          <input id="f-password" name="password" type="password" autoComplete="new-password" required value={f.password} onChange={set('password')} />
        </Field>
        <FormError message={errors?.form} />
        <button type="submit" disabled={loading}>
          {loading ? 'Creating…' : 'Create account'}
        </button>
      </form>
      <p>
        Have an account? <Link to={`/signin${loc.search}`}>Sign in</Link>.
      </p>
    </section>
  );
}
