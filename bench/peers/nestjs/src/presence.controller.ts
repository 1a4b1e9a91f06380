import { Controller, Injectable, type OnModuleDestroy, UseGuards } from "@nestjs/common";
import { GrpcMethod } from "@nestjs/microservices";
import Database from "better-sqlite3";
import { AuthGuard } from "./auth.guard.js";
import { required } from "./token-verifier.js";

/** The projection table presence keeps, with the same pragmas as Meshwork's SQLite driver. */
@Injectable()
export class PresenceStore implements OnModuleDestroy {
  private readonly db: Database.Database;
  private readonly countOnlineUsers: Database.Statement<[number], { count: number }>;

  constructor() {
    this.db = new Database(required("DATABASE_PATH"));
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.exec(`create table if not exists online_sessions (
      session_id text primary key, user_id text not null, email text not null, display_name text not null,
      started_at bigint not null, expires_at bigint not null);
      create index if not exists online_sessions_user on online_sessions (user_id);
      create index if not exists online_sessions_expiry on online_sessions (expires_at);`);
    this.countOnlineUsers = this.db.prepare("select count(distinct user_id) as count from online_sessions where expires_at > ?");
  }

  /** Seeds `count` live sessions of distinct users, so the answer matches presence's. */
  seed(count: number): void {
    const insert = this.db.prepare("insert or ignore into online_sessions values (?, ?, ?, ?, ?, ?)");
    const now = Date.now();
    this.db.transaction(() => {
      for (let i = 0; i < count; i++) insert.run(`session-${i}`, `user-${i}`, `user-${i}@bench`, "bench", now, now + 24 * 3_600_000);
    })();
  }

  onlineUsers(now: number): number {
    return this.countOnlineUsers.get(now)!.count;
  }

  onModuleDestroy(): void {
    this.db.close();
  }
}

@Controller()
@UseGuards(AuthGuard)
export class PresenceController {
  constructor(private readonly store: PresenceStore) {}

  @GrpcMethod("PresenceService", "GetOnlineCount")
  getOnlineCount(): { count: number } {
    return { count: this.store.onlineUsers(Date.now()) };
  }
}
