// Who is logged in: the token (localStorage, so a reload keeps the session) and the account.
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from "react";
import { ok, setToken, token, users } from "./api/client";
import type { components } from "./api/types/users";

type Account = components["schemas"]["UserResponse"];

type Auth = {
  account: Account | null;
  ready: boolean;
  login: (email: string, password: string) => Promise<void>;
  logout: () => void;
  /** Read the account again (after it changed: its address verified). */
  refresh: () => Promise<void>;
};

const AuthContext = createContext<Auth | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [account, setAccount] = useState<Account | null>(null);
  const [ready, setReady] = useState(false);

  const load = useCallback(async () => {
    if (!token()) {
      setAccount(null);
      setReady(true);
      return;
    }
    try {
      setAccount(await ok(users.GET("/users/me")));
    } catch {
      setToken(null); // expired or revoked: log in again
      setAccount(null);
    }
    setReady(true);
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  const login = useCallback(
    async (email: string, password: string) => {
      const answer = await ok(users.POST("/users/login", { body: { email, password } }));
      setToken(answer.accessToken);
      await load();
    },
    [load],
  );

  const logout = useCallback(() => {
    setToken(null);
    setAccount(null);
  }, []);

  return (
    <AuthContext.Provider value={{ account, ready, login, logout, refresh: load }}>
      {children}
    </AuthContext.Provider>
  );
}

export function useAuth(): Auth {
  const auth = useContext(AuthContext);
  if (!auth) throw new Error("useAuth outside AuthProvider");
  return auth;
}
