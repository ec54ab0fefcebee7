package main

import (
	"fmt"
)

// playLesson is a starting point: a demo scenario's opening steps and a
// short text of what to try from there.
type playLesson struct {
	Name    string // the demo scenario's name
	Title   string
	Session string // the steps that set the scene
	Try     string // what to try
}

// playLessonView is a lesson as the page shows it.
type playLessonView struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	Try   string `json:"try"`
}

// playLessons, one per demo scenario, in demo --list's order.
var playLessons = []playLesson{}

// findLesson returns the lesson named name, or nil.
func findLesson(name string) *playLesson {
	for i := range playLessons {
		if playLessons[i].Name == name {
			return &playLessons[i]
		}
	}
	return nil
}

// lessonView is the page's view of the lesson named name (nil for none).
func lessonView(name string) *playLessonView {
	l := findLesson(name)
	if l == nil {
		return nil
	}
	return &playLessonView{Name: l.Name, Title: l.Title, Try: l.Try}
}

// playLoad is the body of a load request: a session to replay, from a
// lesson's start if Session is empty and Lesson names one.
type playLoad struct {
	Session string `json:"session"`
	Lesson  string `json:"lesson"`
}

// load replays a session (or a lesson's opening). pg.mu is held.
func (pg *playground) load(l playLoad) error {
	text := l.Session
	if l.Lesson != "" {
		ls := findLesson(l.Lesson)
		if ls == nil {
			return fmt.Errorf("no lesson %q", l.Lesson)
		}
		if text == "" {
			text = ls.Session
		}
	}
	steps, err := parseSession(text)
	if err != nil {
		return err
	}
	pg.lesson = l.Lesson
	return pg.replay(steps)
}
